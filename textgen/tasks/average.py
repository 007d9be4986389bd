"""An average of sentiment models (`textgen average`): a sentiment model that is not trained.

It reads raw text like any sentiment model (predict, evaluate, export, the app's Sentiment page
take it as one), so the task extends the sentiment task; what differs is that it has no `train`
sub-command, its config lists its members' configs, and its card lists its members.
"""

from __future__ import annotations

import types

from textgen.cardkit import Facts, Table, duration, pct, source_times, stack
from textgen.config import AverageConfig
from textgen.tasks import register
from textgen.tasks.sentiment import SentimentTask, sentiment_tables


def _members(f: Facts) -> list[dict]:
    return f.metadata.get("members") or []


def _pretraining(member: dict, source: str | None) -> str:
    """The Members table's "pretraining time": of the models a member started from (its language
    models); "not recorded" for a source whose time its metadata lacks, "-" for a member from scratch."""
    times = source_times(member.get("init_from") or {})
    return duration(sum(times.values())) if times else "not recorded" if source else "-"


class AverageTask(SentimentTask):
    name = "average"
    config_class = AverageConfig
    help = "average of sentiment models (`textgen average`)"
    models = "averages of sentiment models"
    trains = False
    transfer = False
    adversarial = False

    def architecture(self, model, config) -> dict:
        """Each member's recurrent stack and embedding against its config (`members[i].rnn.cell`, ...),
        the member count, and the storage of the embedding tables."""
        from textgen.artifacts import architecture_vs_config
        from textgen.models.average import members_of

        members = members_of(model)
        found = {"members": (len(config.members), len(members))}
        for i, (member, cfg) in enumerate(zip(members, config.members)):
            found.update({f"members[{i}].{k}": v for k, v in architecture_vs_config(member, cfg).items()})
        stored = sorted({m.get_layer("embedding").dtype for m in members})
        found["embedding_dtype"] = (config.embedding_dtype, stored[0] if len(stored) == 1 else stored)
        return found

    def evaluate(self, model, dataset, split, *, metadata, train_config=None, **flags) -> dict:
        """A sentiment evaluation; the validation split of a corpus without one is the part of train
        its members held out (metadata.json's held_out_rule: one rule for all of them)."""
        rule = metadata.get("held_out_rule")
        trained_on = (metadata.get("dataset") or {}).get("name")
        if train_config is None and rule and dataset in (None, trained_on):
            train_config = types.SimpleNamespace(**rule)
        return super().evaluate(model, dataset, split, metadata=metadata, train_config=train_config, **flags)

    # ---- the model card

    def card_describe(self, f: Facts) -> str:
        members = _members(f)
        c = f.config
        validation = f.metadata.get("validation") or {}
        text = (f"An average of {len(members)} sentiment models: each reads the raw text its own way and "
                f"P(positive) is the mean of theirs (ULMFiT averages a forward and a backward classifier). "
                f"Chosen on validation only: on the {validation.get('examples', 0):,} held-out examples "
                f"of `{f.dataset}` the average reads {pct(validation.get('accuracy'))}, its members "
                + ", ".join(pct(m.get("validation_accuracy")) for m in members) + ".")
        if c.embedding_dtype != "float32":
            text += f" The members' embedding tables are stored in {c.embedding_dtype}."
        return text

    def card_tables(self, f: Facts) -> list[tuple[str, Table]]:
        rows = []
        for i, (m, cfg) in enumerate(zip(_members(f), f.config.members)):
            reads = (f"{stack(cfg.rnn, cfg.backward)}, "
                     f"{'words' if cfg.ngrams == 1 else 'words and word pairs'}, first {cfg.sequence_length} kept, "
                     f"{cfg.pooling} pooling")
            source = (m.get("init_from") or {}).get("path")
            rows.append((str(i), f"`{m.get('path')}`", reads, f"`{source}`" if source else "from scratch",
                         pct(m.get("validation_accuracy")), duration(m.get("training_time_s")),
                         _pretraining(m, source), str(m.get("seed"))))
        members = Table(("member", "model directory", "reads", "started from", "validation accuracy",
                         "training time", "pretraining time", "seed"), rows)
        return sentiment_tables(f) + [("Members", members)]

    def card_model_table(self, f: Facts) -> Table:
        """The shared "Model and training" table, with the members' training in place of a run's."""
        from textgen.card_facts import model_table

        m = f.metadata
        members = _members(f)
        own = sum(x.get("training_time_s") or 0.0 for x in members)
        # members started from the same language model share its pretraining: count it once
        sources = {path: s for x in members for path, s in source_times(x.get("init_from") or {}).items()}
        pretraining = sum(sources.values())
        return model_table(f, training=[
            ("members' embedding tables", f.config.embedding_dtype),
            ("validation accuracy (chose the members)", pct((m.get("validation") or {}).get("accuracy"))),
            ("test split", "not read by training or averaging: chosen on validation only, then scored once with "
                           "`textgen evaluate` (the re-evaluated rows)"),
            ("training time of the members", duration(own)),
            ("training time, the language models they started from included", duration(own + pretraining)),
        ])


TASK = register(AverageTask())
