"""HTML pages for Snakemake's report, which shows images and HTML but offers Markdown only as a download."""

from __future__ import annotations

import html

PAGE_STYLE = ("body{font-family:sans-serif;margin:1em;color:#222} table{border-collapse:collapse;margin:0.5em 0}"
              " th,td{border:1px solid #bbb;padding:2px 8px;text-align:right} th:first-child,td:first-child"
              "{text-align:left} code{background:#eee}")


def markdown_page(markdown_text: str) -> str:
    """A Markdown document (a summary, a comparison) as a standalone HTML page (Python-Markdown with tables);
    its first line is the page's title."""
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"])
    title = html.escape(markdown_text.splitlines()[0].lstrip("# ").strip() if markdown_text.strip() else "page")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title><style>{PAGE_STYLE}</style>"
            f"</head><body>\n{body}\n</body></html>\n")
