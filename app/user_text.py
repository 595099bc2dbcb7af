"""Text a customer or an agent typed, shown as text wherever Streamlit reads Markdown.

Streamlit reads Markdown in ``st.markdown``, ``st.write`` of a string, ``st.caption``, titles and
headers, ``st.info``/``warning``/``error``/``success``, ``st.toast``, every widget's label and
``help``, radio options and captions, button, tab, expander and page-link labels, metric labels and
values, and badges. Rule names, cap scopes, dimension values (project, API key, model), account and
member names, emails, support reasons and messages that quote them go through ``literal`` (or
``code``, the same in code style) before they are put into any of those. Not needed (they show
plain text): dataframe cells, selectbox and multiselect options, ``st.text``, ``st.code``, input
values and placeholders, chart text.

What Streamlit 1.67's Markdown does with text, and how ``literal`` keeps it text (checked in
Chromium by ``tests/e2e/test_user_text_browser.py``):

- CommonMark with GitHub's extensions: links, images, autolinked ``www.``/``https://`` addresses
  and emails, emphasis, code, strikethrough, tables, headings, lists, block quotes, character
  references (``&amp;``), HTML, and Mermaid code blocks. Streamlit's own directives
  (``:red[...]``, ``:blue-badge[...]``, ``:small[...]``) and LaTeX between ``$`` signs are syntax
  too. Every ASCII punctuation character is backslash-escaped (CommonMark lets any of them be),
  which leaves none of these a character to start with.
- After parsing, Streamlit rewrites the text itself, where escapes are already gone:
  ``:material_name:`` becomes an icon (the source's ``:material/`` is first rewritten to that;
  an escaped ``/`` keeps it from happening), ``:streamlit:`` the logo, ``:shortcode:`` an emoji,
  and ``->``, ``<-``, ``<->``, ``--``, ``>=``, ``<=``, ``~=`` between spaces an arrow, a dash or
  a sign. An invisible WORD JOINER (U+2060) after such a colon, or inside such a pair, breaks the
  pattern; what a person reads stays the same.
- Line separators and control characters become a space (``core.text.one_line``): a name is
  shown on one line, and a bidirectional override cannot reorder what follows it. Leading spaces
  are written as character references, so four of them do not make a code block.
"""

from __future__ import annotations

import re
import string

from core.text import one_line

WORD_JOINER = "\u2060"
_ESCAPES = str.maketrans({char: "\\" + char for char in string.punctuation})
# Where a word joiner goes (a zero-width match: it is inserted there), for each pattern Streamlit
# or GitHub's autolinks find in the parsed text.
_BREAKS = re.compile(
    r"(?<=:)(?=[A-Za-z0-9_+-]+:)"  # ":name:", the shape of icon, logo and emoji shortcodes
    r"|(?<=:)(?=//)"  # "https://..."
    r"|(?i:(?<=www))(?=\.)"  # "www.example.com"
    r"|(?<=[-.\w+])(?=@)"  # "name@example.com"
    # "->", "<-", "<->", "--", ">=", "<=", "~=" between spaces (or the ends): arrows, a dash, signs
    r"|(?:(?<=^[<>~-])|(?<=\s[<>~-]))(?=(?:->|[->=])(?:\s|$))"
)
_LEADING_SPACES = re.compile(r"^ +")
_MATERIAL_SOURCE = re.compile(r"(?<=:)(?=material/)")


def literal(text: object) -> str:
    """Markdown that Streamlit shows as exactly ``text`` (on one line): nothing in it links,
    loads an image, formats, colours, becomes an icon or a formula."""
    shown = _BREAKS.sub(WORD_JOINER, one_line(str(text))).translate(_ESCAPES)
    return _LEADING_SPACES.sub(lambda spaces: "&#32;" * len(spaces.group()), shown)


def code(text: object) -> str:
    """Markdown that Streamlit shows as exactly ``text`` (on one line) in code style: an inline code
    span, fenced by more backticks than any run of them inside. Nothing inside a code span is
    Markdown, and Streamlit's icon, emoji, autolink and typography rewrites pass it by; only its
    rewrite of the source's ``:material/`` reaches in, and a word joiner after the colon stops it."""
    shown = _MATERIAL_SOURCE.sub(WORD_JOINER, one_line(str(text)))
    fence = "`" * (max((len(run) for run in re.findall("`+", shown)), default=0) + 1)
    if shown[:1] in ("`", " ") or shown[-1:] in ("`", " "):
        shown = f" {shown} "  # CommonMark takes one space off each end: the text keeps its own
    return f"{fence}{shown}{fence}"
