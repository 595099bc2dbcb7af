"""Every page, for every demo user, at 1400 and 390 px, passes an axe-core scan in Chromium.

No serious or critical violation, and no text below 4.5:1, including text axe leaves
"incomplete" because it cannot tell what is behind it: the sidebar's captions and the demo-mode
note (their opacity stacked them oddly for axe), tab labels (a pseudo-element line under them),
chart labels (an SVG counts as an image). For those the text's own colour, with the opacity of
it and its ancestors, against the first opaque background behind it decides.

Fast: one demo-mode portal for the module; one browser context per user, given a demo session
cookie (the sign-in screen itself is scanned signed out) and reused for all of that user's
pages; each page is opened by its address once, scanned at 1400 px, then narrowed to 390 px
and scanned again (Streamlit folds the sidebar away when the window narrows, as it does when a
page opens on a phone). Each scan is its own test, named user-width-page; run alone, a
phone-width test opens its page itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from core.demo.personas import DEMO_PERSONAS, SUPPORT_ADMIN_EMAIL, SUPPORT_EMAIL
from core.demo.seed import ENTERPRISE, OVERDRAWN
from core.sessions import SESSION_COOKIE, mint_token
from tests.e2e.conftest import Portal, _seed, free_port, run_portal
from tests.e2e.test_navigation_browser import TIMEOUT_MS, wait_idle

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

Page = Any  # playwright.sync_api.Page (imported lazily: chromium may be missing)
WIDTHS = (1400, 390)
HEIGHT = 900
NARROW = 768  # below this width Streamlit's sidebar is folded away
FAILING_IMPACTS = ("serious", "critical")
MIN_CONTRAST = 4.5  # WCAG AA for text of normal size
CUSTOMER_PAGES = (
    "/",
    "/usage",
    "/balance",
    "/buy_credits",
    "/prices",
    "/alerts",
    "/limits",
    "/members",
    "/api_keys",
)
SUPPORT_PAGES = ("/support", f"/support_account?open={OVERDRAWN}", "/support_audit")
CUSTOMERS = tuple(email for email in DEMO_PERSONAS if email not in (SUPPORT_EMAIL, SUPPORT_ADMIN_EMAIL))
# Each agent also sees an account as its customer does (read-only, every customer page).
AGENTS = {SUPPORT_EMAIL: OVERDRAWN, SUPPORT_ADMIN_EMAIL: ENTERPRISE}
SIGNED_OUT = ""
SESSION_SECRET = "a11y-scan-session-secret"  # the portal's, so the test can mint demo sessions


@dataclass(frozen=True)
class Visit:
    user: str  # SIGNED_OUT for the sign-in screen
    path: str
    width: int

    @property
    def name(self) -> str:
        page = self.path.strip("/").split("?")[0] or ("sign-in" if self.user == SIGNED_OUT else "overview")
        who = self.user.split("@")[0] if self.user else "signed-out"
        view = "-as-customer" if "view_as=" in self.path else ""
        return f"{who}-{self.width}-{page}{view}"


def visits() -> list[Visit]:
    """In a row by user (one signed-in browser each), then page (one load), then width."""
    paths: dict[str, tuple[str, ...]] = {SIGNED_OUT: ("/",)}
    for user in CUSTOMERS:
        paths[user] = CUSTOMER_PAGES + (("/no-such-page",) if user == CUSTOMERS[0] else ())
    for agent, viewed in AGENTS.items():
        paths[agent] = SUPPORT_PAGES + tuple(f"{path}?view_as={viewed}" for path in CUSTOMER_PAGES)
    return [Visit(user, path, width) for user, shown in paths.items() for path in shown for width in WIDTHS]


VISITS = visits()


@pytest.fixture(scope="module")
def scan_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    """The portal in demo mode, with the demo's support agent and support admin."""
    work = tmp_path_factory.mktemp("a11y_portal")
    database_url = f"sqlite:///{work / 'meterline.db'}"
    _seed(database_url)
    env = {
        "METERLINE_JOBS": "off",
        "METERLINE_SESSION_SECRET": SESSION_SECRET,
        "METERLINE_SUPPORT_EMAILS": SUPPORT_EMAIL,
        "METERLINE_SUPPORT_ADMIN_EMAILS": SUPPORT_ADMIN_EMAIL,
    }
    with run_portal(work, database_url, port=free_port(), env=env, what="the scanned portal") as running:
        yield running


def drawn(page: Page, width: int) -> None:
    """Wait until the page's script has run and its title, sidebar and charts are drawn at ``width``."""
    page.locator('[data-testid="stMain"] h1').first.wait_for(timeout=TIMEOUT_MS)
    wait_idle(page)
    page.wait_for_function(
        """(narrow) => {
          const sidebar = document.querySelector('[data-testid="stSidebar"]');
          const box = sidebar && sidebar.getBoundingClientRect();
          const settled = !sidebar || (narrow ? box.right <= 0 : box.left === 0);
          const charts = [...document.querySelectorAll('.vega-embed')];
          return settled && charts.every((chart) => chart.querySelector('svg.marks text, canvas.marks'));
        }""",
        arg=width < NARROW,
        timeout=TIMEOUT_MS,
    )
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


class SignedInBrowsers:
    """One browser context per user, kept while that user's visits run (they come in a row)."""

    def __init__(self, browser: Any, portal: Portal) -> None:
        self.browser = browser
        self.portal = portal
        self.user: str | None = None
        self.context: Any = None
        self.page: Page = None
        self.url: str | None = None  # the address open in ``page``

    def show(self, visit: Visit) -> Page:
        """``visit``'s page at its width: opened by its address, or the one open, resized."""
        if visit.user != self.user:
            self.close()
            context = self.browser.new_context(viewport={"width": visit.width, "height": HEIGHT})
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            if visit.user != SIGNED_OUT:  # signed in as the sign-in screen does it, without its clicks
                token = mint_token(SESSION_SECRET.encode(), visit.user, now=datetime.now(UTC))
                context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": self.portal.base_url}])
            self.user, self.context, self.page = visit.user, context, page
        url = self.portal.base_url + visit.path
        self.page.set_viewport_size({"width": visit.width, "height": HEIGHT})
        if url != self.url:
            self.url = None
            self.page.goto(url)
        drawn(self.page, visit.width)
        self.url = url
        return self.page

    def close(self) -> None:
        if self.context is not None:
            self.context.close()
        self.user = self.context = self.page = self.url = None


@pytest.fixture(scope="module")
def browsers(browser: Any, scan_portal: Portal) -> Iterator[SignedInBrowsers]:
    signed_in = SignedInBrowsers(browser, scan_portal)
    yield signed_in
    signed_in.close()


@pytest.fixture(scope="module")
def axe_script() -> str:
    """axe-core, as axe-playwright-python ships it."""
    from axe_playwright_python.sync_playwright import Axe

    return str(Axe().axe_script)


def run_axe(page: Page, script: str) -> dict[str, Any]:
    """axe-core's results for the page as it is now (axe is added to the page once per load)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(script)
    return dict(page.evaluate("() => axe.run(document, {resultTypes: ['violations', 'incomplete']})"))


# The colours of the texts at these selectors: the text's own (SVG text: its fill) with the
# opacity of the text and its ancestors applied, and the first opaque background behind it.
_TEXT_COLOURS = """(selectors) => selectors.map((selector) => {
  const element = document.querySelector(selector);
  if (!element) return null;
  const style = getComputedStyle(element);
  let alpha = element instanceof SVGElement ? Number(style.fillOpacity) : 1;
  for (let at = element; at; at = at.parentElement) alpha *= Number(getComputedStyle(at).opacity);
  let background = "rgb(255, 255, 255)";
  for (let at = element; at; at = at.parentElement) {
    const color = getComputedStyle(at).backgroundColor;
    if (color && color !== "transparent" && !/, 0\\)$/.test(color)) { background = color; break; }
  }
  return {fill: element instanceof SVGElement ? style.fill : style.color, alpha, background};
})"""


def _describe(node: dict[str, Any], why: str) -> str:
    return f"    {' > '.join(map(str, node['target']))}\n      {str(node['html'])[:160]}\n      {why}"


def problems(page: Page, results: dict[str, Any]) -> list[str]:
    """Serious and critical violations, and text below 4.5:1 that axe left undecided (for those,
    the text's colour and the first opaque background behind it decide)."""
    lines = []
    for rule in results["violations"]:
        if rule["impact"] in FAILING_IMPACTS:
            lines.append(f"{rule['id']} ({rule['impact']}): {rule['help']}")
            lines += [_describe(node, " ".join(node["failureSummary"].split())) for node in rule["nodes"]]
    for rule in results["incomplete"]:
        if rule["id"] != "color-contrast":
            continue
        selectors = [node["target"][0] if len(node["target"]) == 1 else "" for node in rule["nodes"]]
        for node, colours in zip(rule["nodes"], page.evaluate(_TEXT_COLOURS, selectors), strict=True):
            if colours is None:
                lines.append(_describe(node, "contrast undecided by axe, and the text was not found"))
            elif colours["alpha"] > 0:  # not hidden (a chart hides the labels that would overlap)
                ratio = contrast(colours["fill"], colours["alpha"], colours["background"])
                if ratio < MIN_CONTRAST:
                    drawn_as = f"{colours['fill']} at {colours['alpha']:.2f} on {colours['background']}"
                    lines.append(_describe(node, f"undecided by axe; {drawn_as}: {ratio:.2f}:1"))
    return lines


def _rgb(css: str) -> tuple[float, float, float]:
    red, green, blue = (float(part) for part in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
    return red, green, blue


def _luminance(rgb: tuple[float, float, float]) -> float:
    linear = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(fill: str, alpha: float, background: str) -> float:
    """WCAG contrast of ``fill`` drawn at ``alpha`` over ``background`` (CSS rgb() colours)."""
    back = _rgb(background)
    red, green, blue = (alpha * f + (1 - alpha) * b for f, b in zip(_rgb(fill), back, strict=True))
    light, dark = sorted((_luminance((red, green, blue)), _luminance(back)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_contrast_follows_wcag() -> None:
    assert contrast("rgb(0, 0, 0)", 1, "rgb(255, 255, 255)") == pytest.approx(21)
    assert contrast("rgb(128, 132, 149)", 1, "rgb(255, 255, 255)") == pytest.approx(3.72, abs=0.01)
    assert contrast("rgb(0, 0, 0)", 0.6, "rgb(255, 255, 255)") == pytest.approx(5.74, abs=0.01)


@pytest.mark.parametrize("visit", VISITS, ids=[visit.name for visit in VISITS])
def test_the_page_has_no_serious_accessibility_violation(
    visit: Visit, browsers: SignedInBrowsers, axe_script: str, scan_portal: Portal
) -> None:
    page = browsers.show(visit)
    found = problems(page, run_axe(page, axe_script))
    if found:
        shot = scan_portal.log.with_name(f"axe-{visit.name}.png")
        page.screenshot(path=str(shot), full_page=True)
        where = f"{visit.path} as {visit.user or 'signed out'} at {visit.width} px"
        pytest.fail(
            f"axe-core on {where} (screenshot {shot}):\n" + "\n".join(found),
            pytrace=False,
        )
