"""Writes this folder: the TensorFlow tutorial's MyModel ("Text generation with an RNN") trained the
way it ran before Keras 3, with the files such a user has: the ModelCheckpoint callback's TF
checkpoints `training_checkpoints/ckpt_{epoch}` and a Keras 2 `model.save_weights("tutorial.h5")`.

tests/test_import.py imports them and compares with `expected.npz` (ids and the model's logits).
Tiny sizes: vocabulary from TEXT, embedding 4, GRU 6. Regenerate (needs tf-keras, the Keras 2
package, which textgen itself does not use):

    pip install --no-deps --target /tmp/tf_keras tf-keras==2.21.0
    cd tests/data/keras2_tutorial && TF_USE_LEGACY_KERAS=1 PYTHONPATH=/tmp/tf_keras python make_fixture.py
"""

import json
import os

import numpy as np
import tensorflow as tf

assert tf.keras.__name__.startswith("tf_keras"), "run with TF_USE_LEGACY_KERAS=1 and tf-keras installed"

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"


# The tutorial's model, verbatim (Keras 2 accepts super().__init__(self) and get_initial_state(x)).
class MyModel(tf.keras.Model):
    def __init__(self, vocab_size, embedding_dim, rnn_units):
        super().__init__(self)
        self.embedding = tf.keras.layers.Embedding(vocab_size, embedding_dim)
        self.gru = tf.keras.layers.GRU(rnn_units, return_sequences=True, return_state=True)
        self.dense = tf.keras.layers.Dense(vocab_size)

    def call(self, inputs, states=None, return_state=False, training=False):
        x = inputs
        x = self.embedding(x, training=training)
        if states is None:
            states = self.gru.get_initial_state(x)
        x, states = self.gru(x, initial_state=states, training=training)
        x = self.dense(x, training=training)
        if return_state:
            return x, states
        return x


def main():
    tf.keras.utils.set_random_seed(7)
    vocab = sorted(set(TEXT))
    ids_from_chars = tf.keras.layers.StringLookup(vocabulary=list(vocab), mask_token=None)
    all_ids = ids_from_chars(tf.strings.unicode_split(TEXT, "UTF-8"))
    sequences = tf.data.Dataset.from_tensor_slices(all_ids).batch(11, drop_remainder=True)
    dataset = sequences.map(lambda s: (s[:-1], s[1:])).batch(2, drop_remainder=True)
    model = MyModel(len(ids_from_chars.get_vocabulary()), 4, 6)
    model.compile(optimizer="adam", loss=tf.losses.SparseCategoricalCrossentropy(from_logits=True))
    checkpoint = tf.keras.callbacks.ModelCheckpoint(filepath=os.path.join("training_checkpoints", "ckpt_{epoch}"),
                                                    save_weights_only=True)
    model.fit(dataset, epochs=2, callbacks=[checkpoint], verbose=0)
    model.save_weights("tutorial.h5")
    with open("vocab.json", "w", encoding="utf-8") as f:
        json.dump(ids_from_chars.get_vocabulary(), f)
    ids = ids_from_chars(tf.strings.unicode_split(["Speak, citizen!", "hear me"], "UTF-8")).to_tensor()
    np.savez("expected.npz", ids=ids.numpy(), logits=model(ids).numpy())


if __name__ == "__main__":
    main()
