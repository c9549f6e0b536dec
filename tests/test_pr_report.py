from pathlib import Path

from slipway.release.pr_report import first_changed, gate_section, serve_check_section, stages

ORDER = ["ingest", "validate", "featurize", "train", "evaluate", "gate"]


def test_stages_follow_dvc_yaml():
    assert stages(Path(__file__).resolve().parents[1] / "dvc.yaml") == ORDER


def test_the_first_changed_stage_in_pipeline_order():
    changed = {"gate": [{"changed deps": {}}], "train": [{"changed outs": {}}], "data/raw.dvc": [{}]}
    assert first_changed(changed, ORDER) == "train"
    assert first_changed({}, ORDER) is None


def test_a_gate_that_ran_shows_its_verdict(tmp_path):
    gate_md = tmp_path / "gate.md"
    gate_md.write_text("## Gate: FAIL\n")
    assert gate_section(gate_md, "gate") == "## Gate: FAIL\n"  # it ran and failed
    assert gate_section(gate_md, None) == "## Gate: FAIL\n"  # everything up to date


def test_a_pipeline_stopped_before_the_gate_hides_the_stale_verdict(tmp_path):
    gate_md = tmp_path / "gate.md"
    gate_md.write_text("## Gate: PASS\n")  # the base branch's, committed
    section = gate_section(gate_md, "validate")
    assert "Pipeline stopped at `validate`" in section and "PASS" not in section


def test_the_server_memory_verdict_is_shown_where_serve_check_ran(tmp_path):
    verdict = tmp_path / "serve-check.md"
    assert serve_check_section(verdict) == ""  # the pipeline failed before it
    verdict.write_text("### Server memory\n\n- canary: ... holds 379 MiB, 37% of its memory limit 1,024 MiB\n")
    assert serve_check_section(verdict) == "\n" + verdict.read_text()
