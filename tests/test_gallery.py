"""The HTML gallery of `intra rank --html` / `intra eval --html`."""

from __future__ import annotations

import html
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sdk.cli import app
from sdk.errors import OutputError
from sdk.gallery import MARKER, Entry, write_gallery
from sdk.pack import load_pack
from sdk.ranker import Ranker

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
GOLD_BORDER = (0x22, 0xAA, 0x22)  # the gold card's border, #2a2


@pytest.fixture(scope="module")
def entries(tiny_bundle, tiny_pack, synthetic_dir):
    from sdk.dataset import load_dataset

    ranker = Ranker(tiny_bundle, tiny_pack, precision="fp32", providers="cpu")
    convs = load_dataset(synthetic_dir).split("test")[:3]
    contexts = [[{"speaker": t.speaker, "text": t.text} for t in c.context] for c in convs]
    results = ranker.rank_many(contexts, 5, explain=True)
    # the first entry's gold is its own top sticker, so a gold card is always drawn
    golds = [results[0].matches[0].sticker_id] + [c.sticker_id for c in convs[1:]]
    return [Entry(ctx, r, g, c.label) for ctx, r, g, c in zip(contexts, results, golds, convs)], ranker


def test_gallery_is_self_contained_escaped_and_marks_the_gold(entries, tmp_path):
    items, ranker = entries
    hostile = Entry([{"speaker": "<b>A</b>", "text": "<script>alert(1)</script>"}], items[0].result, items[0].gold)
    page = write_gallery(tmp_path / "g.html", [*items, hostile], "t").read_text()
    assert page.startswith(MARKER)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 5 * len(items) + 5
    assert "http" not in page.replace("http-equiv", "")  # nothing to fetch
    assert page.count('class="card gold"') >= 1 and "predicted intention" in page and "gold intention" in page
    for m in items[0].result.matches:
        assert m.sticker_id in page and html.escape(m.why.summary(intention=False)) in page


def test_gallery_shows_sticker_turns_as_pictures(entries, tmp_path):
    items, ranker = entries
    sid = ranker.pack.ids[0]
    ctx = [{"speaker": "B", "sticker": sid}, {"speaker": "A", "text": "lol"}]
    page = write_gallery(tmp_path / "g.html", [Entry(ctx, ranker.rank(ctx))], "t", ranker.sticker_files(ctx)).read_text()
    assert f'alt="{sid}"' in page.split('class="turn"')[1]


def test_gallery_never_replaces_a_file_it_did_not_write(entries, tmp_path):
    items, _ = entries
    mine = tmp_path / "notes.html"
    mine.write_text("<html>my own page</html>")
    with pytest.raises(OutputError, match="not an intra gallery"):
        write_gallery(mine, items, "t")
    assert mine.read_text() == "<html>my own page</html>"
    earlier = write_gallery(tmp_path / "g.html", items[:1], "first")
    write_gallery(earlier, items, "second")  # an earlier gallery is replaced
    assert "second" in earlier.read_text()


def test_rank_cli_writes_html(tiny_pack, tmp_path):
    sid = load_pack(tiny_pack).ids[1]
    out = CliRunner().invoke(app, ["rank", f"@sticker:{sid}", "so happy", "--pack", str(tiny_pack), "--precision", "fp32",
                                   "--html", str(tmp_path / "r.html")])
    assert out.exit_code == 0, out.output
    page = (tmp_path / "r.html").read_text()
    assert page.count('class="card') == 5 and f'alt="{sid}"' in page


@pytest.mark.skipif(BROWSER is None, reason="no headless browser (Debian's chromium) installed: the gallery's rendering is not checked")
def test_gallery_renders_in_a_real_browser(entries, tmp_path):
    items, _ = entries
    page = write_gallery(tmp_path / "g.html", items[:1], "rendered")
    shot = tmp_path / "shot.png"
    run = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--window-size=1100,500",
                          f"--screenshot={shot}", page.as_uri()], timeout=120, capture_output=True, text=True)
    if run.returncode != 0 or not shot.is_file():  # the browser itself cannot run here: not the page's fault
        pytest.skip(f"{BROWSER} could not take a screenshot here: {run.stderr.strip()[-300:]}")
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (500, 1100)
    # the gold card's green border was laid out and painted
    assert (np.abs(pixels.astype(int) - GOLD_BORDER).sum(-1) < 30).sum() > 200
    # and the stickers themselves: many colours, not a blank or a broken-image page
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500
