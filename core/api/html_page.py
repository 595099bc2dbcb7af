"""A small self-contained HTML page for what is served outside Streamlit (sandbox checkout, 3-D Secure)."""

from __future__ import annotations

import html


def page(title: str, body: str, *, banner: str = "") -> str:
    """A small self-contained HTML page (the pages outside Streamlit)."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · Meterline</title>
<style>
 body {{ font-family: system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1f2328; }}
 main {{ max-width: 34rem; margin: 3rem auto; background: #fff; padding: 2rem; border-radius: 12px;
        box-shadow: 0 1px 4px rgba(0,0,0,.08); }}
 .banner {{ background: #fff4ce; border: 1px solid #e3c65a; padding: .6rem 1rem; border-radius: 8px;
           font-weight: 600; margin-bottom: 1.2rem; }}
 .amount {{ font-size: 2rem; font-weight: 700; margin: .2rem 0 1rem; }}
 .error {{ color: #b42318; background: #fef3f2; padding: .6rem 1rem; border-radius: 8px; }}
 button {{ display: block; width: 100%; padding: .8rem; margin: .5rem 0; font-size: 1rem; border-radius: 8px;
          border: 1px solid #d0d7de; background: #fff; cursor: pointer; text-align: left; }}
 button.primary {{ background: #0a66ff; color: #fff; border-color: #0a66ff; }}
 code {{ background: #eef1f4; padding: 0 .3rem; border-radius: 4px; }}
 table {{ width: 100%; border-collapse: collapse; }} td {{ padding: .3rem 0; }}
 td:last-child {{ text-align: right; }}
</style></head>
<body><main>{banner}<h1>{html.escape(title)}</h1>{body}</main></body></html>"""
