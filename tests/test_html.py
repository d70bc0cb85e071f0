"""--format html: one self-contained page, opened in a real browser
(headless Chromium): the figures it renders are read back from the DOM and
compared with the JSON report, the organisation table sorts, hostile names
stay text, and the page prints to PDF."""

import json
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from conftest import SAMPLES, need_tool

from ipv6flow.report import html as html_report

PROG = SAMPLES / "programme"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage"]


def run(*args):
    r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", *map(str, args)],
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def chromium(tmp_path, *args, timeout=120):
    exe = need_tool("chromium", "apt-get install chromium")
    profile = tmp_path / "chromium-profile"
    r = subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *map(str, args)],
                       capture_output=True, timeout=timeout)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    return r.stdout.decode()


class Figures(HTMLParser):
    """(data-figure, data-value, text) of every element that carries one,
    the text of every <script>, and row orders of the sortable tables."""

    def __init__(self):
        super().__init__()
        self.figs, self.scripts, self.stack = [], [], []
        self.table = None
        self.rows = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self.table = a["id"]
            self.rows[self.table] = []
        if tag == "td" and self.table and a.get("data-figure", "").endswith("].organisation"):
            self.rows[self.table].append(a["data-figure"])
        self.stack.append((tag, a, []))

    def handle_endtag(self, tag):
        while self.stack:
            t, a, text = self.stack.pop()
            body = "".join(text)
            if self.stack:
                self.stack[-1][2].append(body)
            if "data-figure" in a:
                self.figs.append((a["data-figure"], a.get("data-value"), body))
            if t == "script":
                self.scripts.append(body)
            if t == "table":
                self.table = None
            if t == tag:
                break

    def handle_data(self, data):
        if self.stack:
            self.stack[-1][2].append(data)


def parse(dom):
    p = Figures()
    p.feed(dom)
    return p


def lookup(report, path):
    v = report
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        v = v[int(part[1:-1])] if part.startswith("[") else v[part]
    return v


def shown(v):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{100 * v:.1f}%"
    return f"{v:,}"


@pytest.fixture(scope="module")
def report_and_page(tmp_path_factory):
    d = tmp_path_factory.mktemp("html")
    rep = d / "r.json"
    rep.write_bytes(run("analyze", "--format", "json", "--org-map", PROG / "orgs.csv",
                        PROG / "programme.pcap"))
    page = d / "r.html"
    page.write_bytes(run("merge", "--format", "html", rep))
    return json.loads(rep.read_text()), page


def test_page_is_self_contained(report_and_page):
    _, page = report_and_page
    text = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text, re.I)
    assert "url(" not in text and "@import" not in text
    assert "default-src 'none'" in text          # nothing else may load either


def test_rendered_figures_equal_the_json(report_and_page, tmp_path):
    report, page = report_and_page
    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    p = parse(dom)
    checked = 0
    for path, raw, text in p.figs:
        v = lookup(report, path)
        if path.endswith(".organisation"):
            assert text == ("(no organisation)" if v is None else v), path
            continue
        assert raw == ("" if v is None else repr(v) if isinstance(v, float) else str(v)), path
        assert text.strip() == shown(v), (path, text, v)
        checked += 1
    paths = {f for f, _, _ in p.figs}
    for must in ("share.ipv6_packets", "adoption.overall.ipv6_preferred.on_the_wire",
                 "organisations.rows[1].nat64.packets",
                 "adoption.by_organisation[0].clients.end_to_end",
                 "blocking.overall.destinations[0].bytes", "tunnels.6in4.packets",
                 "clients.share_ipv6_capable", "nat64.suspects[0].packets"):
        assert must in paths, must
    assert checked > 150


def test_the_organisation_table_sorts(report_and_page, tmp_path):
    report, page = report_and_page
    rows = report["organisations"]["rows"]
    # column 2: IPv6 share of packets; no organisation keeps its JSON place
    for suffix, reverse in (":2", False), (":2:down", True):
        dom = chromium(tmp_path, "--dump-dom", page.as_uri() + "#sort=organisations" + suffix)
        order = [int(re.search(r"\[(\d+)\]", f).group(1)) for f in parse(dom).rows["organisations"]]
        keys = [(rows[i]["share"]["ipv6_packets"], i) for i in order]
        assert sorted(order) == list(range(len(rows)))
        vals = [k for k, _ in keys]
        assert vals == sorted(vals, reverse=reverse), vals
        assert order != list(range(len(rows)))


def test_hostile_names_stay_text(tmp_path):
    evil = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'
    m = tmp_path / "evil.csv"
    m.write_text(f'10.1.0.0/16,"{evil.replace(chr(34), chr(34) * 2)}"\n')
    rep = tmp_path / "r.json"
    rep.write_bytes(run("analyze", "--format", "json", "--org-map", m, PROG / "programme.pcap"))
    page = tmp_path / "r.html"
    page.write_bytes(run("merge", "--format", "html", rep))
    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    p = parse(dom)
    assert len(p.scripts) == 1 and "pwned" not in p.scripts[0]
    assert "<img" not in dom and "<title>IPv6 scorecard</title>" in dom
    names = [t for f, _, t in p.figs if f.endswith(".organisation")]
    assert evil in names


def test_screenshot_and_pdf(report_and_page, tmp_path):
    _, page = report_and_page
    png = tmp_path / "page.png"
    chromium(tmp_path, f"--screenshot={png}", "--window-size=1400,2000", page.as_uri())
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1400, 2000) and len(data) > 50_000
    pdf = tmp_path / "page.pdf"
    chromium(tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.as_uri())
    body = pdf.read_bytes()
    assert body.startswith(b"%PDF-") and len(body) > 20_000
    assert len(re.findall(rb"/Type\s*/Page[^s]", body)) >= 2


def test_html_without_org_map_has_the_capture_sections(tmp_path):
    rep = json.loads(run("analyze", "--format", "json", SAMPLES / "mixed.pcap"))
    text = html_report.render(rep)
    for title in ("Headline", "IPv6 share over time", "Tunnels", "Extension headers", "NAT64",
                  "Clients"):
        assert f"<h2>{title}</h2>" in text
    assert "Organisations" not in text and "<script>" not in text
