"""textgen: recurrent neural networks for character-level generation and sentiment.

Importing the package registers the custom cells and layers, so `.keras` files that use them load.
"""

import os as _os

# Quiet TensorFlow's C++ start-up banner unless the user asked for it.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from textgen import cells  # noqa: E402,F401  (registers MinimalGRUCell, PeepholeLSTMCell)
from textgen.cells import MinimalGRUCell, PeepholeLSTMCell  # noqa: E402
from textgen.layers import MaskedMaxMeanPooling, OutputBias, ReversibleEmbedding  # noqa: E402,F401  (registered on import)
from textgen.standardize import lower_keep_emoticons  # noqa: E402,F401  (a registered TextVectorization standardize)

__version__ = "0.1.0"
__all__ = ["MaskedMaxMeanPooling", "MinimalGRUCell", "PeepholeLSTMCell", "__version__"]
