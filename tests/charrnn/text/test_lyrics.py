"""What people see (tidy lines) and the quality measures of the benchmark."""

from charrnn.text.lyrics import character_reuse, distinct_n, has_loop, longest_copied_run, mean_line_length, tidy


def test_tidy_gives_clean_lines_and_one_stanza_break() -> None:
    raw = "你就  一直 你不能不能\n  是后 我就想一个人　 你手  \n \n\n\n第二段\n\n"
    assert tidy(raw) == "你就 一直 你不能不能\n是后 我就想一个人 你手\n\n第二段"
    assert tidy("\n\n  \n") == ""
    assert tidy("The night\tis   long\nI sing") == "The night is long\nI sing"


def test_distinct_loops_copies_and_line_lengths() -> None:
    assert distinct_n(["abab"], 1) == 0.5 and distinct_n(["ab ab"], 2) == 2 / 3
    assert has_loop("我不要再想我不要再想我不要再想") and not has_loop("我不要再想你 我不能再想")
    assert has_loop("你好吗\n你好吗\n你好吗\n")  # the line break is part of the repeated unit
    assert longest_copied_run("天青色等你", "而我在等你炊烟天青色") == 3
    assert longest_copied_run("xyz", "abc") == 0
    assert mean_line_length(["ab\n\nabcd\n"]) == 3.0


def test_character_reuse_counts_second_third_and_later_uses_but_not_a_reduplication() -> None:
    """月 four times (its second, third and fourth uses), 悠悠 once (its second character aside), and each text
    counted on its own: 9 Chinese characters, punctuation and letters not counted."""
    second, third, later = character_reuse(["月明月，悠悠月下月。", "a 月 b"])
    assert (second, third, later) == (1 / 9, 1 / 9, 1 / 9)
