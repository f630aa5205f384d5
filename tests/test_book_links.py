"""Equation-to-code links: each points at the line that holds its needle, and a lost needle raises."""

import pytest

from sepcore.book_links import code_link, equation_table
from sepcore.paths import REPO_ROOT
from sepcore.separation import lass_search, latent_bayes


@pytest.mark.parametrize("obj, needle", [
    (latent_bayes.pair_log_likelihood_table, "return -code_dist2"),
    (latent_bayes.LatentBayesSeparator.sample, "stepper.log_probs"),           # decorated with torch.no_grad
    (lass_search.lass_search, "table = lam * ll"),
])
def test_a_link_points_at_the_line_with_its_needle(obj, needle):
    link = code_link(obj, needle, "label")
    path, line = link.split("/blob/main/")[1].rstrip(")").split("#L")
    assert link.startswith("[`label`](")
    assert needle in (REPO_ROOT / path).read_text().splitlines()[int(line) - 1]


def test_a_lost_needle_raises():
    with pytest.raises(ValueError, match="does not occur"):
        code_link(lass_search.lass_search, "no such line")


def test_the_table_has_one_row_per_term():
    table = equation_table([("$a$", "[x](u)"), ("$b$", "[y](v)")]).splitlines()
    assert table[:2] == ["| term | code |", "| --- | --- |"] and table[2:] == ["| $a$ | [x](u) |", "| $b$ | [y](v) |"]
