from slipway.monitoring import verdicts


def test_markdown_heads_with_the_verdict_and_tabulates_the_rows():
    text = verdicts.markdown("Drift", verdicts.FAIL, "10 rows.", None, ["feature", "score"],
                             [["age ⚠️", "0.500"], ["region", 0.01]])
    assert text == ("## ❌ Drift: FAIL\n\n10 rows.\n\n| feature | score |\n| --- | --- |\n"
                    "| age ⚠️ | 0.500 |\n| region | 0.01 |\n")


def test_a_cell_holding_a_pipe_or_a_line_break_keeps_its_row():
    """A team's feature named 'plan|tier' split its row into one cell more than the header has."""
    text = verdicts.markdown("Drift", verdicts.PASS, "10 rows.", None, ["feature", "score"], [["plan|tier\nb", 0.1]])
    assert text.endswith("| plan\\|tier b | 0.1 |\n")


def test_markdown_gives_the_reason_and_no_empty_table():
    text = verdicts.markdown("Canary analysis", verdicts.INCONCLUSIVE, "0 requests.", "too little traffic",
                             ["check"], [])
    assert text == "## ⚠️ Canary analysis: INCONCLUSIVE\n\n0 requests.\n\ntoo little traffic\n"
    assert verdicts.EXIT_CODES == {"pass": 0, "fail": 1, "inconclusive": 3}
