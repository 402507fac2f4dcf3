"""The one command that reproduces the paper-style table, on tiny models."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from experiments.paper_table import app


@pytest.mark.slow  # an experiment's whole run: left out of the test command (pytest -m slow runs it)
def test_paper_table_trains_variants_and_writes_one_report(synthetic_dir, tmp_path):
    from sdk.dataset import load_dataset

    data = tmp_path / "data"
    shutil.copytree(synthetic_dir, data)
    args = ["--preset", "tiny", "--epochs", "1", "--variants", "-knowledge", "--variants", "int-ra +extra-intention", "--no-probes"]
    # without extra_intention.jsonl the +extra-intention variant is left out
    result = CliRunner().invoke(app, ["--data", str(data), "--out", str(tmp_path / "a"), *args])
    assert result.exit_code == 0, result.output
    models = json.loads((tmp_path / "a" / "report.json").read_text())["aggregate"]
    assert {"int-ra", "-knowledge", "random", "popular", "intention-only"} <= set(models)
    assert "int-ra +extra-intention" not in models

    extra = [c.to_json() for c in load_dataset(data).split("train")[:40]]
    for rec in extra:
        rec.pop("sticker_id")
        rec["id"] = "extra-" + rec["id"]
    (data / "extra_intention.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in extra))
    result = CliRunner().invoke(app, ["--data", str(data), "--out", str(tmp_path / "b"), *args])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert "int-ra +extra-intention" in report["aggregate"]
    config = json.loads((tmp_path / "b" / "runs" / "int-ra-extra-intention" / "config.json").read_text())
    assert config["train"]["extra_intention"] is True
    assert "int-ra +extra-intention" in (tmp_path / "b" / "report.md").read_text()


@pytest.mark.slow  # an experiment's whole run: left out of the test command (pytest -m slow runs it)
def test_paper_table_over_seeds_reports_mean_std_and_the_sdk_row(synthetic_dir, tmp_path):
    out = tmp_path / "t"
    args = ["--data", str(synthetic_dir), "--out", str(out), "--preset", "tiny", "--epochs", "1", "--variants", "-attributes",
            "--seeds", "0,1", "--sdk"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "report.json").read_text())
    assert summary["seeds"] == [0, 1] and len(summary["main_interval95"]) == 2
    per_seed = [json.loads((out / f"seed-{s}" / "report.json").read_text()) for s in (0, 1)]
    row = summary["aggregate"]["int-ra"]["MRR"]
    values = [r["models"]["int-ra"]["MRR"] for r in per_seed]
    assert row["mean"] == sum(values) / 2 and row["std"] >= 0
    assert {"int-ra (sdk int8)", "probe-emoji", "probe-intention", "-attributes", "popular"} <= set(summary["aggregate"])
    assert (out / "runs" / "int-ra-s1" / "scoring.json").is_file() and (out / "bundles" / "int-ra-s1" / "manifest.json").is_file()
    assert "±" in (out / "report.md").read_text()
    # paired differences: the SDK row against every other row, per conversation averaged over seeds
    paired = summary["paired"]
    assert paired["default"] == "int-ra (sdk int8)" and "int-ra (sdk int8)" not in paired["rows"]

    def mrr(row):
        return [(a + b) / 2 for a, b in zip(per_seed[0]["per_query"][row]["MRR"], per_seed[1]["per_query"][row]["MRR"])]
    diff = paired["rows"]["random"]["MRR"]
    assert abs(diff["mean"] - (sum(mrr("int-ra (sdk int8)")) - sum(mrr("random"))) / len(mrr("random"))) < 1e-6
    lo, hi = diff["interval"]
    assert lo <= diff["mean"] <= hi and diff["beyond_noise"] == (lo > 0 or hi < 0)
    assert "Differences of the default (`int-ra (sdk int8)`)" in (out / "report.md").read_text()


@pytest.mark.slow  # an experiment's whole run: left out of the test command (pytest -m slow runs it)
def test_levers_table_reads_validation_figures_of_each_lever(synthetic_dir, tmp_path):
    from experiments.levers import app as levers_app

    out = tmp_path / "levers"
    args = ["--data", str(synthetic_dir), "--out", str(out), "--preset", "tiny", "--only", "base", "--only", "final", "--no-probes"]
    result = CliRunner().invoke(levers_app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "levers.json").read_text())["levers"]
    assert set(rows) == {"base", "final"}
    for slug, row in rows.items():
        grid = json.loads((out / "runs" / slug / "scoring.json").read_text())["grid"]
        assert row["objective"] >= max(g["objective"] for g in grid if g["prior_weight"] == 0 and g["label_weight"] == 0) - 1e-9
    assert "final: best checkpoint by" in (out / "levers.md").read_text()
    bad = CliRunner().invoke(levers_app, ["--data", str(synthetic_dir), "--out", str(out), "--only", "nope"])
    assert bad.exit_code != 0 and "unknown lever" in bad.output


@pytest.mark.slow  # an experiment's whole run: left out of the test command (pytest -m slow runs it)
def test_goemotions_head_scores_every_comment_of_a_split(tiny_run_dir, synthetic_dir, tmp_path):
    from experiments.goemotions_head import app as head_app
    from sdk.dataset import load_dataset
    from sdk.labels import LABEL_INDEX

    convs = load_dataset(synthetic_dir).split("test")[:40]
    source = tmp_path / "source" / "goemotions"
    source.mkdir(parents=True)
    (source / "dev.tsv").write_text("".join(f"{c.context[-1].text}\t{LABEL_INDEX[c.label]}\tid{i}\n" for i, c in enumerate(convs)))
    out = tmp_path / "head"
    result = CliRunner().invoke(head_app, ["--run", str(tiny_run_dir), "--source", str(tmp_path / "source"), "--out", str(out),
                                           "--data", str(synthetic_dir)])
    assert result.exit_code == 0, result.output
    head = json.loads((out / "head.json").read_text())
    assert head["comments"] == 40 and 0 <= head["head"]["macro_f1"] <= 1 and 0 <= head["probe_intention"]["accuracy"] <= 1
    assert "BERT-base" in (out / "head.md").read_text()
