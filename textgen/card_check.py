"""Checking a card: does `MODEL_DIR/README.md` still say what metadata.json says (`textgen card --check`)?"""

from __future__ import annotations

import os
import re
from pathlib import Path

from textgen.card_command import CardError, check_command, model_dir_of, normalise_command
from textgen.card_facts import CARD_FILE, NOTES_KEY, SAMPLE_TEMPERATURES, card_tables, facts_of, verdicts
from textgen.card_load import load_section

_ROW = re.compile(r"^\|(.*)\|\s*$")
_SAMPLE = re.compile(r"\*\*temperature ([0-9.]+)\*\* \(seed (\d+)\):\n\n(~{4,})text\n(.*?)\n\3\n", re.DOTALL)


def _table_rows(text: str) -> list[tuple[str, ...]]:
    rows = []
    for line in text.splitlines():
        m = _ROW.match(line.strip())
        if m:
            cells = tuple(c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", m.group(1)))
            if not all(set(c) <= {"-", ":"} and c for c in cells):  # skip the |---| separator rows
                rows.append(cells)
    return rows


def card_samples(text: str) -> list[tuple[float, int, str]]:
    """(temperature, seed, text shown) of each sample in a card."""
    return [(float(t), int(s), body) for t, s, _, body in _SAMPLE.findall(text)]


def card_command(text: str) -> str | None:
    m = re.search(r"## Reproduce\n\n```bash\n(.*?)\n```", text, re.DOTALL)
    return m.group(1) if m else None


# The card's "## Load it elsewhere" section up to the next level-2 heading.
_LOAD_SECTION = re.compile(r"^## Load it elsewhere\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
# The card's "## Notes" section up to the next level-2 heading; group 1 is the notes' text.
_NOTES_SECTION = re.compile(r"^## Notes\n\n(.*?)\n*(?=^## |\Z)", re.DOTALL | re.MULTILINE)


def verify_card(model_dir: str | os.PathLike, regenerate_samples: bool = False, prompt: str = "") -> list[str]:
    """Problems found comparing `README.md` with metadata.json (empty list: the card agrees).

    Every table row of the card must be one that metadata.json (and the weights and files) yield
    today, and every such row must be in the card; the command must still rebuild the configs;
    character models must show one sample per temperature. With `regenerate_samples`, each sample
    must also come out again from its seed (same machine type: floating-point differences between
    CPUs can change sampled characters).
    """
    from textgen import tasks
    from textgen.artifacts import load_model_dir

    path = Path(model_dir)
    card = path / CARD_FILE
    if not card.is_file():
        return [f"{card} is missing"]
    text = card.read_text(encoding="utf-8")
    md = load_model_dir(path)
    f = facts_of(path, md.model, md.config, md.metadata)
    problems = []
    expected = [row for _, table in card_tables(f) for row in (table.header, *table.rows)]
    # The notes are free Markdown (they may hold tables of their own); they are checked as a whole below.
    found = _table_rows(_NOTES_SECTION.sub("", text))
    for row in found:
        if row not in expected:
            problems.append(f"card row not from metadata.json: {' | '.join(row)}")
    for row in expected:
        if row not in found:
            problems.append(f"card lacks the row: {' | '.join(row)}")
    for v in verdicts(f):
        if f"- {v}" not in text:
            problems.append(f"card lacks the verdict: {v}")
    notes = (md.metadata.get(NOTES_KEY) or "").strip()
    shown = _NOTES_SECTION.search(text)
    if (shown.group(1).strip() if shown else "") != notes:
        problems.append("the card's notes differ from metadata.json's card_notes")
    command = card_command(text)
    if command is None:
        problems.append("card has no `## Reproduce` command")
    else:
        try:
            argv = normalise_command(command)
            check_command(argv, path, md.config, md.metadata)
        except CardError as err:
            problems.append(str(err))
        else:
            shown = _LOAD_SECTION.search(text)
            expected = "\n".join(load_section(f, model_dir_of(argv) or f.name)).rstrip("\n")
            if (shown.group(0).rstrip("\n") if shown else "") != expected:
                problems.append("the card's \"Load it elsewhere\" differs from what model.keras needs")
    if tasks.get(f.task).generates:
        shown = card_samples(text)
        temps = tuple(t for t, _, _ in shown)
        if temps != SAMPLE_TEMPERATURES:
            problems.append(f"card samples are at temperatures {temps}, expected {SAMPLE_TEMPERATURES}")
        elif any(len(body) <= len(prompt) for _, _, body in shown):
            problems.append("a card sample is empty")
        elif regenerate_samples:
            from textgen.sampling import Sampler, SamplingParams

            sampler = Sampler(md.model)
            for (t, seed, body) in shown:
                params = SamplingParams(length=len(body) - len(prompt), temperature=t, seed=seed)
                if prompt + sampler.generate(prompt, params)[0] != body:
                    problems.append(f"the sample at temperature {t} does not come out again from seed {seed}")
    return problems
