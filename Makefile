# The README's two commands. Both create .venv on first use and install everything they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Two pytest workers, one test file each at a time (--dist loadfile keeps a file's module fixtures, such as
# its Streamlit server, in one process): on 2 idle cores the whole suite took 566 s to 1,445 s across runs (this machine varies),
# against 1,373 s in one process. It is CPU-bound: three workers took 1,141 s with 99 % of both cores busy.
PYTEST_ARGS ?= -n 2 --dist loadfile --durations=25

.PHONY: setup test app models bench clean pretrain-imdb pretrain-imdb-fwd pretrain-imdb-bwd

# requirements.txt is about 600 MB to download and 3 GB installed (TensorFlow is most of both): say
# so, and let pip show its progress bars, so a first run is not minutes of silence.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "Installing requirements.txt into $(VENV) (TensorFlow, Keras, Streamlit, ...): about 600 MB to download,"
	@echo "3 GB installed, a few minutes on a first run; pip shows its progress below. Later runs skip this."
	$(PY) -m pip install --progress-bar on -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# Server settings (127.0.0.1:8501, headless, upload size, no Deploy button) live in .streamlit/config.toml,
# which Streamlit reads from the working directory: make runs this from the repository root.
app: $(STAMP)
	$(PY) -m streamlit run apps/streamlit_app.py

clean:
	rm -rf $(VENV) .pytest_cache

# --------------------------------------------------------------------------------------------
# make models: retrain every shipped model in saved_models/ from scratch, evaluate, write the
# cards and docs/cell_comparison.{md,png}. Time on this 2-core CPU: about 2 hours (training times
# recorded in the cards, per model in docs/models.md). Offline: tiny_shakespeare's source ships with
# textgen; the IMDB archive is read from MANUAL_DIR (default ../shared/data; see docs/datasets.md).
# `make models RETRAIN=0` keeps finished models and continues interrupted runs (every train command resumes its own unfinished run from the last completed epoch).
MANUAL_DIR  ?= ../shared/data
DATA_DIR    ?=
MODELS_DIR  ?= saved_models
EVAL_DIR    ?= runs/model_evals
RETRAIN     ?= 1
TEXTGEN     := $(VENV)/bin/textgen
# Empty DATA_DIR: TFDS's default ($$TFDS_DATA_DIR or ~/tensorflow_datasets), and no --data-dir in the cards.
DATA_FLAG       := $(if $(DATA_DIR),--data-dir $(DATA_DIR),)
# tiny_shakespeare's source file ships inside textgen (textgen/data_files): no --manual-dir, no network.
SHAKESPEARE_SRC := $(DATA_FLAG)
IMDB_SRC        := $(DATA_FLAG) --manual-dir $(MANUAL_DIR)/aclImdb
# VADER's corpora come in the vaderSentiment sdist: from $(MANUAL_DIR)/vader_sentiment when there, else pip.
VADER_SRC       := $(DATA_FLAG) $(if $(wildcard $(MANUAL_DIR)/vader_sentiment),--manual-dir $(MANUAL_DIR)/vader_sentiment,)

# mixed_bfloat16: 1.79x the float32 tutorial's chars/s here with the same loss (docs/performance.md).
SHAKESPEARE_TRAIN := $(TEXTGEN) train charlm --dataset tiny_shakespeare --cell lstm --units 512 --layers 2 \
	--dropout 0.3 --embedding-dim 64 --batch-size 64 --seq-len 100 --epochs 40 --patience 3 --learning-rate 0.002 \
	--precision mixed_bfloat16 --seed 1 $(SHAKESPEARE_SRC) --out $(MODELS_DIR)/shakespeare_char --overwrite

# The zoo: one model per cell kind, ~200k parameters each (units from `textgen match-units
# --target-params 200000 --embedding-dim 32`; tests/test_compare.py checks them), the same budget
# (10 full epochs, no early stopping) and the same seed.
ZOO_PARAMS     := 200000
ZOO_VOCAB_SIZE := 66
ZOO_EMBEDDING  := 32
ZOO_LAYERS     := 1
ZOO_EPOCHS     := 10
ZOO_UNITS_simple_rnn    := 398
ZOO_UNITS_gru           := 230
ZOO_UNITS_lstm          := 199
ZOO_UNITS_minimal_gru   := 283
ZOO_UNITS_peephole_lstm := 155
ZOO_KINDS := simple_rnn gru lstm minimal_gru peephole_lstm
zoo_train = $(TEXTGEN) train charlm --dataset tiny_shakespeare --cell $(1) --units $(ZOO_UNITS_$(1)) \
	--layers $(ZOO_LAYERS) --embedding-dim $(ZOO_EMBEDDING) --batch-size 64 --seq-len 100 --epochs $(ZOO_EPOCHS) \
	--patience 0 --learning-rate 0.002 --seed 1 $(SHAKESPEARE_SRC) --out $(MODELS_DIR)/zoo_$(1) --overwrite

# The BiGRU reads each review's words, then its word pairs (--ngrams 2, as fastText reads IMDB), and the
# heads see the max and mean of its outputs (a decisive phrase counts wherever it is). The kept epoch is
# the one with the best validation accuracy, the task's metric (docs/model_notes/imdb_sentiment.md).
# Adversarial training (--adversarial 0.25, Miyato et al.) was chosen on validation; --no-test: training
# never reads the test reviews, and $(EVAL_DIR)/imdb_sentiment-aclimdb.json scores them once for the card.
IMDB_TRAIN := $(TEXTGEN) train sentiment --dataset aclimdb --cell gru --units 64 --bidirectional --adversarial 0.25 --no-test \
	--embedding-dim 64 --max-tokens 150000 --ngrams 2 --sequence-length 1000 --pooling max_mean --dropout 0.5 \
	--no-valence-head --batch-size 64 --epochs 2 --patience 1 --monitor val_accuracy --learning-rate 0.002 --seed 1 $(IMDB_SRC) \
	--out $(MODELS_DIR)/imdb_sentiment --overwrite

# vader_sentiment, the model for general text, is the average of two readers of the four VADER corpora (`textgen
# average`, as imdb_average), each fine-tuned on them with --no-test (chosen on validation; the
# $(EVAL_DIR)/vader_sentiment-*.json evaluations score the test splits once):
# - bigru: the IMDB word-pair BiGRU transferred (its vocabulary, embedding, BiGRU and polarity head; the valence head is
#   new), so it is trained after imdb_sentiment (MODEL_NAMES keeps that order);
# - lm_fwd: a one-way GRU 256x2 from the forward IMDB word language model, with emoticons kept and the corpora's 10,000
#   most frequent words it lacks added.
# Their mean reads 79.73 % of the validation texts against 78.45 % and 74.16 % for each (docs/model_notes/vader_sentiment.md).
VADER_MEMBERS_DIR ?= runs/vader_members
VADER_FLAGS := --cell gru --units 64 --bidirectional \
	--embedding-dim 64 --max-tokens 150000 --ngrams 2 --sequence-length 96 --pooling max_mean --dropout 0.5 --valence-head \
	--init-from $(MODELS_DIR)/imdb_sentiment --batch-size 32 --epochs 8 --patience 2 --monitor val_accuracy --learning-rate 0.001 \
	--no-test --seed 1 $(VADER_SRC)
VADER_LM_FLAGS := --cell gru --units 256 --layers 2 --no-bidirectional --embedding-dim 64 \
	--max-tokens 30000 --extend-vocabulary 10000 --standardize lower_keep_emoticons --ngrams 1 --sequence-length 96 \
	--pooling max_mean --dropout 0.3 --valence-head --discriminative 2.6 --learning-rate 0.001 --schedule cosine \
	--batch-size 32 --epochs 4 --monitor val_accuracy --no-test --seed 1 $(VADER_SRC)
# $(1): the corpus (all, or all_but_D), $(2): the folder of its two members
vader_bigru_train = $(TEXTGEN) train sentiment --dataset vader_sentiment/$(1) $(VADER_FLAGS) --out $(2)/bigru --overwrite
# $(3): the language model's direction, fwd (the default) or bwd (--backward: the classifier reads last word first)
vader_lm_train = $(TEXTGEN) train sentiment --dataset vader_sentiment/$(1) --init-from runs/imdb_wordlm_$(or $(3),fwd) \
	$(VADER_LM_FLAGS) $(if $(filter bwd,$(3)),--backward,) --out $(2)/lm_$(or $(3),fwd) --overwrite
# The average's second member: lm_fwd (shipped), or lm_bwd (measured, docs/model_notes/vader_sentiment.md); the
# held-out measurements follow it.
VADER_SECOND ?= lm_fwd
vader_average = $(TEXTGEN) average $(1)/bigru $(1)/$(VADER_SECOND) --embedding-dtype float16 $(VADER_SRC) --out $(2) --overwrite
VADER_MEMBER_NAMES := bigru lm_fwd lm_bwd
VADER_MEMBER_TRAIN_bigru := $(call vader_bigru_train,all,$(VADER_MEMBERS_DIR))
VADER_MEMBER_TRAIN_lm_fwd := $(call vader_lm_train,all,$(VADER_MEMBERS_DIR))
# A third reader, measured for the average and not in it (docs/model_notes/vader_sentiment.md): the same GRU from the
# backward IMDB language model.
VADER_MEMBER_TRAIN_lm_bwd := $(call vader_lm_train,all,$(VADER_MEMBERS_DIR),bwd)
VADER_TRAIN := $(call vader_average,$(VADER_MEMBERS_DIR),$(MODELS_DIR)/vader_sentiment)

# Transfer to text it never saw, measured: the same two readers trained on three domains (all_but_D), averaged, and
# evaluated on the fourth, next to the VADER lexicon and a TF-IDF baseline fit on the same three. These models are
# measurements, not shipped (HOLDOUT_DIR/vader_without_D: bigru/, lm_fwd/ and the average); vader_sentiment's card
# shows the results.
HOLDOUT_DIR ?= runs/holdout

# RETRAIN=0 keeps a finished member run, as train-% keeps a shipped model. $(1): the run, $(2): its command.
keep_or_train = if [ "$(RETRAIN)" = 0 ] && $(call finished_run,$(1)); then echo "keeping the finished $(1) (RETRAIN=0)"; \
	else $(2); fi
vader-member-lm_fwd: pretrain-imdb-fwd
vader-member-lm_bwd: pretrain-imdb-bwd
vader-member-%:
	@$(call keep_or_train,$(VADER_MEMBERS_DIR)/$*,$(VADER_MEMBER_TRAIN_$*))
train-vader_sentiment: vader-member-bigru vader-member-$(VADER_SECOND)
# The held-out members of domain D: vader-holdout-bigru-D and vader-holdout-lm_fwd-D (or -lm_bwd-D) (`make -j2` trains
# them side by side).
vader-holdout-bigru-%:
	@$(call keep_or_train,$(HOLDOUT_DIR)/vader_without_$*/bigru,$(call vader_bigru_train,all_but_$*,$(HOLDOUT_DIR)/vader_without_$*))
vader-holdout-lm_fwd-%: pretrain-imdb-fwd
	@$(call keep_or_train,$(HOLDOUT_DIR)/vader_without_$*/lm_fwd,$(call vader_lm_train,all_but_$*,$(HOLDOUT_DIR)/vader_without_$*))
vader-holdout-lm_bwd-%: pretrain-imdb-bwd
	@$(call keep_or_train,$(HOLDOUT_DIR)/vader_without_$*/lm_bwd,$(call vader_lm_train,all_but_$*,$(HOLDOUT_DIR)/vader_without_$*,bwd))

# Pretraining for sentiment (ULMFiT, docs/training.md): word language models on IMDB's train and
# unsupervised reviews (never the test ones), forward and backward. About 1.4 s a step on 2 idle cores,
# 4,000 steps each; every 100 steps is a checkpoint, and `make pretrain-imdb` again resumes. Both runs are
# committed, finished (an unfinished run's checkpoint would resume in a fresh clone).
# A shell test: $(1) holds a finished run (model.keras and no unfinished run in .resume/).
finished_run = [ -f $(1)/model.keras ] && [ ! -d $(1)/.resume ]
IMDB_LM_FLAGS := --dataset aclimdb --cell gru --units 256 --layers 2 --embedding-dim 64 --dropout 0.2 --max-tokens 20000 \
	--epochs 40 --steps-per-epoch 100 --validation-steps 20 --batch-size 64 --seq-len 70 --learning-rate 0.003 \
	--schedule cosine --patience 0 --seed 1 $(IMDB_SRC)
# A finished run (model.keras, no .resume/) is kept: train refuses to replace it without --overwrite.
pretrain-imdb: pretrain-imdb-fwd pretrain-imdb-bwd
pretrain-imdb-fwd: $(STAMP)
	$(call finished_run,runs/imdb_wordlm_fwd) || $(TEXTGEN) train wordlm $(IMDB_LM_FLAGS) --out runs/imdb_wordlm_fwd
pretrain-imdb-bwd: $(STAMP)
	$(call finished_run,runs/imdb_wordlm_bwd) || $(TEXTGEN) train wordlm $(IMDB_LM_FLAGS) --backward --out runs/imdb_wordlm_bwd

# The IMDB average (ULMFiT averages two classifiers' P(positive)): the word-pair BiGRU above (imdb_sentiment) and a
# one-way GRU 256x2 fine-tuned from the forward IMDB language model, which err on different reviews. The member is
# a run in $(IMDB_MEMBERS_DIR) (not shipped on its own: the average holds it whole); both are chosen on the 2,500
# train reviews their training held out (--no-test), and `textgen average` scores them and their mean there.
# Its embedding tables are stored in float16 (the model is about half the size, the same validation accuracy).
IMDB_MEMBERS_DIR ?= runs/imdb_members
# One member per direction of the language models: $(1) is fwd or bwd. The backward member (ULMFiT's second direction)
# reads each review last word first (--backward; ReverseTokens keeps the padding on the right, so cuDNN's masks hold).
# It is measured, not averaged: with it the average reads 91.92 % of the validation reviews, without it 92.44 %
# (docs/training.md); `make imdb-member-lm_bwd` reruns it.
imdb_lm_member = $(TEXTGEN) train sentiment --dataset aclimdb --init-from runs/imdb_wordlm_$(1) --cell gru --units 256 \
	--layers 2 --no-bidirectional --embedding-dim 64 --max-tokens 20000 --ngrams 1 --sequence-length 400 --pooling max_mean \
	--dropout 0.3 --no-valence-head --discriminative 2.6 --unfreeze 0 --learning-rate 0.002 --schedule cosine --batch-size 64 \
	--epochs 3 --monitor val_accuracy --seed 1 --no-test $(if $(filter bwd,$(1)),--backward,) $(IMDB_SRC) \
	--out $(IMDB_MEMBERS_DIR)/lm_$(1) --overwrite
IMDB_AVERAGE := $(TEXTGEN) average $(MODELS_DIR)/imdb_sentiment $(IMDB_MEMBERS_DIR)/lm_fwd --embedding-dtype float16 \
	$(IMDB_SRC) --out $(MODELS_DIR)/imdb_average --overwrite
# One line per member run that is not a shipped model: NAME<TAB>its train command (tests/test_shipped_models.py).
IMDB_MEMBER_NAMES := lm_fwd lm_bwd
IMDB_MEMBER_TRAIN_lm_fwd := $(call imdb_lm_member,fwd)
IMDB_MEMBER_TRAIN_lm_bwd := $(call imdb_lm_member,bwd)

# Each member needs its language model.
imdb-member-lm_fwd: pretrain-imdb-fwd
imdb-member-lm_bwd: pretrain-imdb-bwd
imdb-member-%:
	@$(call keep_or_train,$(IMDB_MEMBERS_DIR)/$*,$(IMDB_MEMBER_TRAIN_$*))

# The forward language model first (a finished one is kept), then the member, then the average.
train-imdb_average: imdb-member-lm_fwd

# Your own text, with thousands of distinct characters: classical Chinese poetry and sayings from Debian's
# fortunes-zh (bench/corpora.py fetches the package with apt-get download and writes the file).
CHINESE_CORPUS := runs/corpora/fortunes_zh.txt
CHINESE_TRAIN := $(TEXTGEN) train charlm --text-file $(CHINESE_CORPUS) --cell gru --units 384 --embedding-dim 128 \
	--min-count 2 --batch-size 64 --seq-len 64 --epochs 20 --patience 3 --learning-rate 0.003 --dropout 0.1 --seed 1 \
	$(DATA_FLAG) --out $(MODELS_DIR)/classical_chinese_char --overwrite

MODEL_NAMES := shakespeare_char $(addprefix zoo_,$(ZOO_KINDS)) imdb_sentiment imdb_average vader_sentiment classical_chinese_char
TRAIN_shakespeare_char := $(SHAKESPEARE_TRAIN)
TRAIN_imdb_sentiment   := $(IMDB_TRAIN)
TRAIN_imdb_average     := $(IMDB_AVERAGE)
TRAIN_vader_sentiment  := $(VADER_TRAIN)
TRAIN_classical_chinese_char := $(CHINESE_TRAIN)
$(foreach k,$(ZOO_KINDS),$(eval TRAIN_zoo_$(k) := $(call zoo_train,$(k))))
TITLE_shakespeare_char := shakespeare_char: 2-layer LSTM on tiny_shakespeare
TITLE_imdb_sentiment   := imdb_sentiment: bidirectional GRU over words and word pairs, pooled, on IMDB reviews
TITLE_imdb_average     := imdb_average: the word-pair BiGRU and a GRU fine-tuned from the IMDB language model, averaged
TITLE_vader_sentiment  := vader_sentiment: two readers of the four VADER corpora averaged, started from imdb_sentiment and the IMDB language model
TITLE_classical_chinese_char := classical_chinese_char: GRU over classical Chinese poetry and sayings (your own text)
$(foreach k,$(ZOO_KINDS),$(eval TITLE_zoo_$(k) := zoo_$(k): $(k) in the cell-kind comparison))

# Held-out evaluations beyond the test metrics training records: baselines on the same examples.
VADER_DOMAINS := movies tweets amazon nyt
# shakespeare_char also on the validation split: with the test split it is nanoGPT's validation text.
EVALS_shakespeare_char := $(EVAL_DIR)/shakespeare_char-validation.json
EVALS_imdb_sentiment  := $(EVAL_DIR)/imdb_sentiment-aclimdb.json
EVALS_imdb_average    := $(EVAL_DIR)/imdb_average-aclimdb.json
EVALS_vader_sentiment := $(foreach d,all $(VADER_DOMAINS),$(EVAL_DIR)/vader_sentiment-$(d).json)
HELD_OUT_vader_sentiment := $(foreach d,$(VADER_DOMAINS),$(EVAL_DIR)/vader_holdout-$(d).json)
# imdb_sentiment never saw VADER's texts: its results there are held out as they are (both corpora are
# prepared by then: imdb_sentiment's training and the vader_sentiment evaluations come first).
HELD_OUT_imdb_sentiment  := $(foreach d,$(VADER_DOMAINS),$(EVAL_DIR)/imdb_sentiment-on-vader-$(d).json)

models: $(STAMP)
	$(MAKE) -j1 $(addprefix train-,$(MODEL_NAMES)) $(EVALS_shakespeare_char) $(EVALS_imdb_sentiment) $(EVALS_imdb_average) $(EVALS_vader_sentiment) \
		$(HELD_OUT_vader_sentiment) $(HELD_OUT_imdb_sentiment) $(addprefix card-,$(MODEL_NAMES)) compare-zoo
	$(PY) -m pytest -q tests/test_shipped_models.py

train-classical_chinese_char: $(CHINESE_CORPUS)

$(CHINESE_CORPUS): $(STAMP)
	$(PY) -m bench.corpora fortunes-zh $@

# RETRAIN=0 keeps a finished model directory (model.keras and no unfinished run in .resume/).
train-%:
	@if [ "$(RETRAIN)" = 0 ] && $(call finished_run,$(MODELS_DIR)/$*); then \
		echo "keeping the finished $(MODELS_DIR)/$* (RETRAIN=0)"; else echo "training $*"; $(TRAIN_$*); fi

$(EVAL_DIR)/shakespeare_char-validation.json: FORCE
	mkdir -p $(EVAL_DIR)
	$(TEXTGEN) evaluate $(MODELS_DIR)/shakespeare_char --split validation --json $(SHAKESPEARE_SRC) > $@.tmp
	mv $@.tmp $@

# imdb_sentiment and imdb_average: the IMDB test reviews, scored once, with the baselines on the same reviews.
$(EVAL_DIR)/%-aclimdb.json: FORCE
	mkdir -p $(EVAL_DIR)
	$(TEXTGEN) evaluate $(MODELS_DIR)/$* --dataset aclimdb --baselines --json $(IMDB_SRC) > $@.tmp
	mv $@.tmp $@

$(EVAL_DIR)/vader_sentiment-%.json: FORCE
	mkdir -p $(EVAL_DIR)
	$(TEXTGEN) evaluate $(MODELS_DIR)/vader_sentiment --dataset vader_sentiment/$* --baselines --json $(VADER_SRC) > $@.tmp
	mv $@.tmp $@

$(EVAL_DIR)/imdb_sentiment-on-vader-%.json: FORCE
	mkdir -p $(EVAL_DIR)
	$(TEXTGEN) evaluate $(MODELS_DIR)/imdb_sentiment --dataset vader_sentiment/$* --baselines \
		--baseline-train-dataset aclimdb --json $(DATA_FLAG) > $@.tmp
	mv $@.tmp $@

# The two held-out members (kept when finished and RETRAIN=0), their average, and its evaluation on the domain left out.
$(EVAL_DIR)/vader_holdout-%.json: vader-holdout-bigru-% vader-holdout-$(VADER_SECOND)-% FORCE
	mkdir -p $(EVAL_DIR)
	$(call vader_average,$(HOLDOUT_DIR)/vader_without_$*,$(HOLDOUT_DIR)/vader_without_$*/average)
	$(TEXTGEN) evaluate $(HOLDOUT_DIR)/vader_without_$*/average --dataset vader_sentiment/$* --baselines \
		--baseline-train-dataset vader_sentiment/all_but_$* --json $(VADER_SRC) > $@.tmp
	mv $@.tmp $@

# docs/model_notes/NAME.md (what was tried, how far from a target) goes into the card's Notes when present.
card-%:
	$(TEXTGEN) card $(MODELS_DIR)/$* --title "$(TITLE_$*)" --command "$(TRAIN_$*)" $(addprefix --evaluation ,$(EVALS_$*)) \
		$(addprefix --held-out ,$(HELD_OUT_$*)) \
		$(if $(wildcard docs/model_notes/$*.md),--notes docs/model_notes/$*.md)

compare-zoo:
	$(TEXTGEN) compare $(addprefix $(MODELS_DIR)/zoo_,$(ZOO_KINDS)) --out docs --limit-chars 20000 $(SHAKESPEARE_SRC)

# One line per shipped model: NAME<TAB>the command that makes it (tests/test_shipped_models.py checks them).
print-train-commands:
	@$(foreach n,$(MODEL_NAMES),printf '%s\t%s\n' '$(n)' '$(TRAIN_$(n))';)

# One line per member run of an average that is not itself shipped: PATH<TAB>its train command.
print-member-commands:
	@$(foreach n,$(IMDB_MEMBER_NAMES),printf '%s\t%s\n' '$(IMDB_MEMBERS_DIR)/$(n)' '$(IMDB_MEMBER_TRAIN_$(n))';)
	@$(foreach n,$(VADER_MEMBER_NAMES),printf '%s\t%s\n' '$(VADER_MEMBERS_DIR)/$(n)' '$(VADER_MEMBER_TRAIN_$(n))';)

FORCE:
.PHONY: print-train-commands print-member-commands compare-zoo FORCE
