#!/usr/bin/env python3
"""Checks a page written by `syncsim report DB --format html` (tests/html_test.sh):

  html_check.py PAGE --svg N --csv REPORT.csv [--label TEXT] [--missing K]

- it parses, every element closed in order (void and self-closed elements aside);
- it holds exactly N <svg> elements (the plots), and K notes of plots not drawn;
- it loads nothing: no script, linked style sheet, image, frame or object elements, no
  @import or url(...) in its own style sheet, no src
  attribute, no href but to '#...', no url(...) but url(#...), no http(s) URL in any
  attribute, no event handler attribute; and its ids are unique;
- its report table has the rows of `syncsim report --format csv` with the same options:
  the same scenario, label and point, in the same order;
- with --label: TEXT is the text of a cell of the report table and of the runs table, and
  part of the text drawn in an SVG plot.
Prints what is wrong and exits 1, or exits 0."""
import argparse
import csv
import re
import sys
from html.parser import HTMLParser

VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "area", "base", "source"}
LOADING = {"script", "link", "img", "iframe", "frame", "object", "embed", "audio", "video",
           "source", "base", "image", "foreignobject"}


class Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems, self.stack, self.ids = [], [], set()
        self.svgs = self.missing = 0
        self.table = None           # "report" or "runs" while inside that table
        self.rows = {"report": [], "runs": []}
        self.cell = None            # the text of the cell being read
        self.svg_text = []          # the text of every <text> in the plots
        self.in_text = 0

    def check_attrs(self, tag, attrs):
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self.problems.append(f"<{tag}> has an event handler {name}")
            if name == "src":
                self.problems.append(f"<{tag}> has src={value!r}")
            if name.endswith("href") and not value.startswith("#"):
                self.problems.append(f"<{tag}> refers outside the page: {name}={value!r}")
            for url in re.findall(r"url\(\s*['\"]?([^)'\"]*)", value, re.I):
                if not url.startswith("#"):
                    self.problems.append(f"<{tag}> refers outside the page: url({url})")
            if re.search(r"https?:", value, re.I):
                self.problems.append(f"<{tag}> has a URL in {name}={value!r}")
            if name == "id":
                if value in self.ids:
                    self.problems.append(f"the id {value!r} is used twice")
                self.ids.add(value)

    def handle_starttag(self, tag, attrs):
        self.start(tag, attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.start(tag, attrs)

    def start(self, tag, attrs):
        if tag in LOADING:
            self.problems.append(f"a <{tag}> element")
        self.check_attrs(tag, attrs)
        a = dict(attrs)
        if tag == "svg":
            self.svgs += 1
        if tag == "table" and a.get("class") in ("report", "runs"):
            self.table = a["class"]
        if tag == "tr" and self.table:
            self.rows[self.table].append([])
        if tag == "td" and self.table:
            self.cell = ""
        if tag == "text":
            self.in_text += 1
            self.svg_text.append("")
        if tag == "p" and a.get("class") == "missing":
            self.missing += 1

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
                                 f" (line {self.getpos()[0]})")
        else:
            self.stack.pop()
        if tag == "td" and self.table and self.cell is not None:
            if self.rows[self.table]:
                self.rows[self.table][-1].append(self.cell)
            self.cell = None
        if tag == "table":
            self.table = None
        if tag == "text":
            self.in_text -= 1

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data
        if self.in_text:
            self.svg_text[-1] += data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("page")
    ap.add_argument("--svg", type=int, required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--label")
    ap.add_argument("--missing", type=int, default=0)
    args = ap.parse_args()
    text = open(args.page, encoding="utf-8").read()  # fails on invalid UTF-8
    p = Page()
    p.feed(text)
    p.close()
    if p.stack:
        p.problems.append(f"unclosed elements at the end: {p.stack}")
    for style in re.findall(r"<style[^>]*>(.*?)</style>", text, re.S | re.I):
        if re.search(r"@import|url\(\s*['\"]?[^#'\"\s]", style, re.I):
            p.problems.append("a style sheet that loads something")
    if not text.startswith("<!DOCTYPE html>"):
        p.problems.append("no <!DOCTYPE html> first")
    if p.svgs != args.svg:
        p.problems.append(f"{p.svgs} <svg> elements, expected {args.svg}")
    if p.missing != args.missing:
        p.problems.append(f"{p.missing} notes of plots not drawn, expected {args.missing}")
    with open(args.csv, newline="", encoding="utf-8") as f:
        want = [(r["scenario"], r["label"], r["point"] or "-") for r in csv.DictReader(f)]
    got = [tuple(r[:3]) for r in p.rows["report"] if r]
    if got != want:
        p.problems.append(f"report rows {got}, expected {want}")
    if args.label is not None:
        if not any(r[1] == args.label for r in p.rows["report"] if len(r) > 1):
            p.problems.append(f"no report row labelled {args.label!r}")
        if not any(r[2] == args.label for r in p.rows["runs"] if len(r) > 2):
            p.problems.append(f"no run labelled {args.label!r}")
        if not any(args.label in t for t in p.svg_text):
            p.problems.append(f"no plot draws {args.label!r}")
    for problem in p.problems:
        print(problem)
    return 1 if p.problems else 0


if __name__ == "__main__":
    sys.exit(main())
