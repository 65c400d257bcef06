"""The case team's console in a real Chromium against `make dev`: what a moderator does all day,
and what a party's words must never do there."""
from __future__ import annotations

import re
import uuid
from typing import Any

from local.demo import LocalApi, delivered_order, escalated_case, open_dispute, wait_until
from tests.browser.session import IMAGES, sign_in

XSS_IMG = "<img src=x onerror=alert('img')>"
XSS_SCRIPT = "<script>alert('script')</script>"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def open_case(page: Any, base: str, dispute_id: str) -> Any:
    response = page.goto(f"{base}/console/disputes/{dispute_id}")
    assert response.status == 200
    return response


def decide(page: Any, outcome: str, rationale: str, amount: str = "", fault: str = "") -> None:
    page.select_option("select[name=outcome]", outcome)
    page.fill("input[name=amount]", amount)
    page.select_option("select[name=fault]", fault)
    page.fill("textarea[name=rationale]", rationale)
    page.click("#decision button[type=submit]")


def test_a_moderator_decides_a_partial_refund_through_the_confirmation_and_the_refund_is_paid(
        dev: dict[str, Any], api: LocalApi, browse: Any) -> None:
    base = dev["base"]
    case = escalated_case(api, unique("o-partial"), amount=2500)
    did = case["dispute_id"]
    page = browse().page()
    sign_in(page, base, "m-1")
    assert page.locator(f"a[href='/console/disputes/{did}']").count() == 1, "the case is in the queue"
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / "console-queue.png"))
    # The first case of this make dev: the oldest nobody holds, so the next one.
    page.click("text=Take the next case")
    page.wait_for_url(re.compile(rf"/console/disputes/{did}\?notice=claimed"))
    assert page.inner_text("#holder") == "m-1 (you)"
    assert api.call("GET", f"/disputes/{did}", "m-2")["assignment"]["moderator_id"] == "m-1"

    # The buyer's photo as a thumbnail that really loaded, linking to the full-size copy.
    thumb = page.locator("img.thumb")
    assert thumb.count() == 1
    assert page.evaluate("() => document.querySelector('img.thumb').complete"
                         " && document.querySelector('img.thumb').naturalWidth") > 0
    evidence = api.call("GET", f"/disputes/{did}/evidence", "m-1")["items"][0]
    assert thumb.evaluate("i => i.closest('a').href").split("?")[0] == evidence["download_url"].split("?")[0]
    assert "CN123456789" in page.inner_text("#tracking"), "the tracking is on the case"
    # Version 1.3: the seller's standing and the buyer's signals, with what they mean.
    assert page.inner_text("#seller-level").startswith(("not enough data", "good", "watch", "at risk"))
    assert "disputes lost" in page.inner_text("#buyer-flag")
    timeline = page.inner_text("#timeline")
    assert "opened" in timeline and "escalated" in timeline
    page.fill("textarea[name=note]", "Listing photo is clearly red; buyer's photo clearly blue.")
    page.click("#notes button[type=submit]")
    page.wait_for_url(re.compile(r"notice=note"))
    assert "Listing photo is clearly red" in page.inner_text("#notes")
    page.screenshot(path=str(IMAGES / "console-case.png"), full_page=True)
    assert "Listing photo" not in str(api.call("GET", f"/disputes/{did}", "b-1")), "parties never see notes"

    decide(page, "REFUND_PARTIAL", "The photo shows a blue dress; the listing shows red. Part refund.",
           amount="8.00", fault="CARRIER")
    assert page.locator("h1").inner_text().startswith("Confirm the decision")
    assert page.inner_text("#confirm-amount") == "8.00 USD" and page.inner_text("#confirm-fault") == "carrier"
    # One button decides; beside it only the way back (keeping what was typed) and signing out.
    assert page.locator("form[action$='/decision/confirm']").count() == 1, "one form decides"
    assert page.locator("button, input[type=submit]").all_inner_texts() == [
        "Sign out", "Confirm decision", "Back to the case, change nothing"]
    page.click("text=Confirm decision")
    page.wait_for_url(re.compile(rf"/console/disputes/{did}\?notice=decided"))
    assert page.inner_text("#status") == "RESOLVED"

    dispute = api.call("GET", f"/disputes/{did}", "b-1")
    assert dispute["status"] == "RESOLVED"
    assert dispute["resolution"]["outcome"] == "REFUND_PARTIAL" and dispute["resolution"]["amount"] == {
        "amount": 800, "currency": "USD"}
    assert (dispute["resolution"]["decided_by"], dispute["resolution"]["fault"]) == ("moderator", "CARRIER")
    assert "assignment" not in dispute, "parties never see who holds a case"
    wait_until(lambda: api.call("GET", f"/disputes/{did}", "b-1")["refund"]["status"] == "SUCCEEDED", 60,
               "the simulated provider to pay the refund")
    escrow = api.call("GET", f"/orders/{case['order_id']}", "b-1")["escrow"]
    assert (escrow["refunded"]["amount"], escrow["released"]["amount"]) == (800, 1700)


def test_what_a_party_wrote_is_shown_as_text_and_runs_nothing(dev: dict[str, Any], api: LocalApi,
                                                               browse: Any) -> None:
    base = dev["base"]
    payload = f"{XSS_SCRIPT}{XSS_IMG}"
    case = escalated_case(api, unique("o-xss"), description=f"Broken {payload}", message=f"Look {payload}",
                          file_name=f"{XSS_SCRIPT.replace('/', '')}{XSS_IMG}.jpg")
    did = case["dispute_id"]
    watched = browse()
    page = watched.page()
    sign_in(page, base, "m-1")
    open_case(page, base, did)
    page.fill("textarea[name=note]", f"Note {payload}")
    page.click("#notes button[type=submit]")
    page.wait_for_url(re.compile(r"notice=note"))
    response = open_case(page, base, did)
    page.wait_for_load_state("networkidle")

    assert page.inner_text("#description") == f"Broken {payload}"
    assert f"Look {payload}" in page.inner_text("#messages")
    assert f"Note {payload}" in page.inner_text("#notes")
    assert f"{XSS_SCRIPT.replace('/', '')}{XSS_IMG}.jpg" in page.inner_text(".file-name")
    # None of it became an element: the only image is the thumbnail, the only script the console's.
    assert page.evaluate("() => [...document.images].map(i => i.className)") == ["thumb"]
    assert page.evaluate("() => [...document.scripts].map(s => new URL(s.src).pathname)") == [
        "/console/static/console.js"]
    assert watched.problems == []

    headers = response.headers
    csp = {d.split()[0]: d.split()[1:] for d in headers["content-security-policy"].split("; ")}
    assert csp["default-src"] == ["'none'"] and csp["script-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    moto_port = dev["ports"][1]
    assert csp["img-src"] == [f"http://127.0.0.1:{moto_port}"], "images only from the evidence links' origin"
    assert not any("unsafe" in v for values in csp.values() for v in values)
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"


def test_a_partys_bidi_controls_cannot_reverse_the_text_around_it(dev: dict[str, Any], api: LocalApi,
                                                                   browse: Any) -> None:
    """The seller's tracking number ends in U+202E (RIGHT-TO-LEFT OVERRIDE): unisolated, everything
    after it on the line (", shipped <when>, last scan <when>") would read backwards."""
    rlo = "\u202e"
    order_id = unique("o-bidi")
    delivered_order(api, order_id, "b-1", "s-1", f"Red dress {rlo}XL", 2500, tracking=f"CN1{rlo}")
    did = open_dispute(api, order_id, "b-1", f"Ordered red {rlo}received blue")["dispute_id"]
    api.call("POST", f"/disputes/{did}/reject", "s-1", {"message": f"As listed {rlo}red"})
    api.call("POST", f"/disputes/{did}/escalate", "s-1", {})
    page = browse().page()
    sign_in(page, dev["base"], "m-1")
    open_case(page, dev["base"], did)
    # Where each word lands: line by line, left to right, as written.
    lefts = page.evaluate("""() => {
      const line = document.getElementById("tracking");
      const at = (word) => {
        const walk = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
        for (let node = walk.nextNode(); node; node = walk.nextNode()) {
          const i = node.textContent.indexOf(word);
          if (i >= 0) {
            const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + word.length);
            const box = r.getClientRects()[0];
            return [Math.round(box.top), box.left];
          }
        }
        return null;
      };
      return [at("China"), at("shipped"), at("last")];
    }""")
    carrier, shipped, last_scan = lefts
    assert None not in lefts, lefts
    assert tuple(carrier) < tuple(shipped) < tuple(last_scan), f"the text after the tracking number was reordered: {lefts}"
    assert page.inner_text("#description") == f"Ordered red {rlo}received blue", "still the party's text"


def test_the_decision_form_is_worked_with_the_keyboard_alone_and_checks_the_amount_before_sending(
        dev: dict[str, Any], api: LocalApi, browse: Any) -> None:
    base = dev["base"]
    case = escalated_case(api, unique("o-keys"), amount=2500)
    did = case["dispute_id"]
    page = browse().page()
    sign_in(page, base, "m-2")
    open_case(page, base, did)

    controls = page.evaluate("() => [...document.querySelectorAll('#decision input:not([type=hidden]), "
                             "#decision select, #decision textarea')].map(e => [e.name, e.labels.length > 0])")
    assert {name for name, _ in controls} == {"outcome", "amount", "fault", "rationale"}
    assert all(labelled for _, labelled in controls), "every control has a label"

    def tab_to(selector: str, limit: int = 80) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to("select[name=outcome]")
    page.keyboard.press("ArrowDown")  # past "choose an outcome" to a full refund
    page.keyboard.press("ArrowDown")  # then a partial one
    assert page.input_value("select[name=outcome]") == "REFUND_PARTIAL"
    tab_to("input[name=amount]")
    page.keyboard.type("30.00")  # more than the 25.00 the order cost
    tab_to("select[name=fault]")
    page.keyboard.press("ArrowDown")  # the first named fault: the seller's
    tab_to("textarea[name=rationale]")
    page.keyboard.type("Half the set was missing from the parcel.")
    tab_to("#decision button[type=submit]")
    page.keyboard.press("Enter")
    assert "less than the order total" in page.inner_text("#amount-error")
    assert page.url == f"{base}/console/disputes/{did}", "the browser did not send it"
    assert page.evaluate("() => document.activeElement.name") == "amount"

    page.keyboard.press("Control+A")
    page.keyboard.type("12.50")
    tab_to("#decision button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/console/disputes/{did}/decision")
    assert page.inner_text("#confirm-amount") == "12.50 USD"
    tab_to("form[action$='/decision/confirm'] button")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"notice=decided"))
    assert api.call("GET", f"/disputes/{did}", "s-1")["resolution"]["amount"]["amount"] == 1250


def test_without_the_script_the_server_refuses_a_partial_amount_over_the_total_and_changes_nothing(
        dev: dict[str, Any], api: LocalApi, browse: Any) -> None:
    base = dev["base"]
    case = escalated_case(api, unique("o-noscript"), amount=2500)
    did = case["dispute_id"]
    before = api.call("GET", f"/disputes/{did}", "m-1")
    watched = browse(javascript=False)
    watched.expect(422)
    page = watched.page()
    sign_in(page, base, "m-3")
    open_case(page, base, did)
    with page.expect_response(lambda r: r.url.endswith("/decision")) as answer:
        decide(page, "REFUND_PARTIAL", "More than the order cost: must be refused.", amount="30.00")
    assert answer.value.status == 422
    assert "less than the order total" in page.inner_text("#problem")
    assert page.input_value("textarea[name=rationale]") == "More than the order cost: must be refused."
    after = api.call("GET", f"/disputes/{did}", "m-1")
    assert (after["status"], after["version"]) == ("ESCALATED", before["version"])


def test_a_case_that_moved_on_before_the_confirmation_is_refused_in_plain_words(
        dev: dict[str, Any], api: LocalApi, browse: Any) -> None:
    base = dev["base"]
    case = escalated_case(api, unique("o-moved"))
    did = case["dispute_id"]
    watched = browse()
    watched.expect(409)
    page = watched.page()
    sign_in(page, base, "m-4")
    open_case(page, base, did)
    decide(page, "REJECTED", "The photo shows the item as listed.")
    page.wait_for_url(f"{base}/console/disputes/{did}/decision")
    api.call("POST", f"/sandbox/disputes/{did}/expire-deadline", "b-1")  # the case moves on meanwhile
    with page.expect_response(lambda r: r.url.endswith("/decision/confirm")) as answer:
        page.click("text=Confirm decision")
    assert answer.value.status == 409
    assert "moved on" in page.inner_text("#problem") and "VERSION_CONFLICT" in page.inner_text("#problem")
    assert api.call("GET", f"/disputes/{did}", "b-1")["status"] == "ESCALATED"


def test_a_form_without_the_sessions_csrf_token_or_without_a_session_changes_nothing(
        dev: dict[str, Any], api: LocalApi, browse: Any) -> None:
    base = dev["base"]
    case = escalated_case(api, unique("o-csrf"))
    did = case["dispute_id"]
    watched = browse()
    page = watched.page()
    sign_in(page, base, "m-5")
    body = {"outcome": "REJECTED", "rationale": "Forged from another page, must not count."}
    forged = watched.context.request.post(f"{base}/console/disputes/{did}/decision/confirm", form=body,
                                          max_redirects=0)
    assert forged.status == 403
    # A party's bearer token is no console session: it is sent to sign in, and nothing changes.
    token = api.token("b-1")
    anonymous = browse().context.request.post(f"{base}/console/disputes/{did}/decision/confirm",
                                              form={**body, "csrf_token": "x"}, max_redirects=0,
                                              headers={"Authorization": f"Bearer {token}"})
    assert anonymous.status == 303 and anonymous.headers["location"] == "/console/sign-in"
    assert api.call("GET", f"/disputes/{did}", "b-1")["status"] == "ESCALATED"


def test_the_queue_and_the_case_read_without_sideways_scrolling_on_a_laptop_and_a_tablet(
        dev: dict[str, Any], api: LocalApi, browse: Any) -> None:
    base = dev["base"]
    did = escalated_case(api, unique("o-sizes"), description="A long complaint " * 40)["dispute_id"]
    for size in ((1280, 800), (768, 1024)):
        page = browse(viewport=size).page()
        sign_in(page, base, "m-9")
        for path in ("/console/", f"/console/disputes/{did}"):
            page.goto(f"{base}{path}")
            wide = page.evaluate("() => document.documentElement.scrollWidth")
            assert wide <= size[0], f"{path} is {wide} px wide at {size}"
            size_of = page.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)")
            assert size_of >= 16, "body text at least 16 px"


def test_a_second_moderators_decision_on_a_claimed_case_is_refused_with_who_holds_it(
        dev: dict[str, Any], api: LocalApi, browse: Any) -> None:
    base = dev["base"]
    did = escalated_case(api, unique("o-claimed"))["dispute_id"]
    first = browse().page()
    sign_in(first, base, "m-6")
    open_case(first, base, did)
    first.click("text=Take this case")
    first.wait_for_url(re.compile(r"notice=claimed"))

    watched = browse()
    watched.expect(409)
    second = watched.page()
    sign_in(second, base, "m-7")
    open_case(second, base, did)
    assert "m-6" in second.inner_text("#holder")
    with second.expect_response(lambda r: r.url.endswith("/decision")) as answer:
        decide(second, "REJECTED", "I would reject this, but someone else holds it.")
    assert answer.value.status == 409
    problem = second.inner_text("#problem")
    assert "m-6 holds it until" in problem and "Another moderator holds this case" in problem
    assert "CASE_CLAIMED" in problem
    dispute = api.call("GET", f"/disputes/{did}", "m-7")
    assert (dispute["status"], dispute["assignment"]["moderator_id"]) == ("ESCALATED", "m-6")

    # The holder gives it back; then the second moderator may take it.
    first.click("text=Give it back")
    first.wait_for_url(re.compile(r"notice=released"))
    open_case(second, base, did)
    second.click("text=Take this case")
    second.wait_for_url(re.compile(r"notice=claimed"))
    assert api.call("GET", f"/disputes/{did}", "m-6")["assignment"]["moderator_id"] == "m-7"


def test_the_next_case_button_says_so_when_no_case_is_left(dev: dict[str, Any], api: LocalApi,
                                                          browse: Any) -> None:
    base = dev["base"]
    page = browse().page()
    sign_in(page, base, "m-8")
    for _ in range(50):  # take every case still free, as a moderator working the queue would
        page.click("text=Take the next case")
        page.wait_for_load_state()
        if "notice=none-left" in page.url:
            break
        page.goto(f"{base}/console/")
    assert "No case is waiting" in page.inner_text("main")
    assert api.call("GET", "/moderation/disputes?assigned=none", "m-8")["items"] == []


# ---- review 2: what a moderator working a queue found --------------------------------------------------
def test_a_decimal_comma_is_refused_never_read_as_a_thousands_separator(dev: dict[str, Any], api: LocalApi,
                                                                        browse: Any) -> None:
    """A moderator used to a decimal comma types 8,00 for eight dollars on a 2000.00 USD order: the
    console must refuse it (or read 8.00), never offer to refund 800.00 USD."""
    base = dev["base"]
    case = escalated_case(api, unique("o-comma"), amount=200000)
    watched = browse()
    watched.expect(400, 422)
    page = watched.page()
    sign_in(page, base, "m-5")
    page.goto(f"{base}/console/disputes/{case['dispute_id']}")
    page.select_option("select[name=outcome]", "REFUND_PARTIAL")
    page.fill("input[name=amount]", "8,00")
    page.fill("textarea[name=rationale]", "Eight dollars back for the scratch on the lid.")
    page.click("#decision button[type=submit]")
    page.wait_for_load_state()
    if page.locator("#confirm-amount").count():
        assert page.inner_text("#confirm-amount") != "800.00 USD", "8,00 became a refund of 800.00 USD"
    # The script says why before sending; without it the server refuses with the same words.
    assert "Use a point for decimals: 8.00" in page.inner_text("#amount-error")
    assert page.url == f"{base}/console/disputes/{case['dispute_id']}", "the browser did not send it"
    plain = browse(javascript=False)
    plain.expect(400)
    page = plain.page()
    sign_in(page, base, "m-5")
    open_case(page, base, case["dispute_id"])
    with page.expect_response(lambda r: r.url.endswith("/decision")) as answer:
        decide(page, "REFUND_PARTIAL", "Eight dollars back for the scratch on the lid.", amount="8,00")
    assert answer.value.status == 400
    assert "use a point for decimals: 8.00" in page.inner_text("#problem")


def test_a_rationale_of_4000_characters_with_line_breaks_is_accepted(dev: dict[str, Any], api: LocalApi,
                                                                     browse: Any) -> None:
    """The textarea lets a moderator type 4000 characters (its maxlength counts a line break as one);
    the browser sends each break as CRLF, and the server must not count those as two."""
    base = dev["base"]
    case = escalated_case(api, unique("o-crlf"), amount=2500)
    watched = browse()
    watched.expect(400)
    page = watched.page()
    sign_in(page, base, "m-6")
    page.goto(f"{base}/console/disputes/{case['dispute_id']}")
    page.select_option("select[name=outcome]", "REFUND_FULL")
    page.fill("textarea[name=rationale]", ("a" * 99 + "\n") * 40)
    assert len(page.input_value("textarea[name=rationale]")) == 4000
    page.click("#decision button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#problem").count() == 0, page.inner_text("#problem")
    assert page.locator("#confirm-rationale").count() == 1


def test_the_confirm_button_is_pressed_once_and_the_case_shows_the_decision(dev: dict[str, Any], api: LocalApi,
                                                                             browse: Any) -> None:
    base = dev["base"]
    did = escalated_case(api, unique("o-once"), amount=2500)["dispute_id"]
    page = browse().page()
    sign_in(page, base, "m-7")
    open_case(page, base, did)
    decide(page, "REFUND_FULL", "The parcel arrived empty: the whole amount back.")
    page.wait_for_url(f"{base}/console/disputes/{did}/decision")
    assert "Paid now: the whole 25.00 USD back to the buyer" in page.inner_text("#confirm-money")
    # The first click: the script disables the button as the form goes (a listener of the test's holds
    # it here, so the page can be read before it leaves); the server stays the guard.
    pressed = page.evaluate("""() => {
        const form = document.getElementById('confirm-form');
        form.addEventListener('submit', (e) => e.preventDefault());
        const button = form.querySelector('button');
        button.click();
        return button.disabled;
    }""")
    assert pressed is True, "the confirm button is disabled once pressed"
    with page.expect_navigation():
        page.evaluate("() => document.getElementById('confirm-form').submit()")
    page.wait_for_url(re.compile(rf"/console/disputes/{did}\?notice=decided"))
    assert "refund full" in page.inner_text("#decision-card") and "m-7" in page.inner_text("#decision-card")
    events = [t["event"] for t in api.call("GET", f"/disputes/{did}", "m-1")["timeline"]]
    assert events.count("dispute.decided") == 1


def test_ones_own_claim_that_ran_out_says_to_take_the_case_again(dev: dict[str, Any], api: LocalApi,
                                                                 browse: Any) -> None:
    base = dev["base"]
    did = escalated_case(api, unique("o-lease"), amount=2500)["dispute_id"]
    page = browse().page()
    sign_in(page, base, "m-8")
    page.clock.install()
    open_case(page, base, did)
    page.click("text=Take this case")
    page.wait_for_url(re.compile(r"notice=claimed"))
    assert page.locator("#claim-ended").is_hidden()
    page.clock.fast_forward("31:00")
    page.wait_for_selector("#claim-ended", state="visible")
    assert page.inner_text("#claim-ended") == ("Your claim ended; anyone can take this case. "
                                               "Take it again before deciding.")


def test_a_link_followed_before_signing_in_lands_on_its_page(dev: dict[str, Any], api: LocalApi,
                                                             browse: Any) -> None:
    base = dev["base"]
    did = escalated_case(api, unique("o-next"), amount=2500)["dispute_id"]
    page = browse().page()
    page.goto(f"{base}/console/disputes/{did}")
    assert page.url == f"{base}/console/sign-in"
    page.fill("input[name=moderator_id]", "m-9")
    page.click("form button[type=submit]")
    page.wait_for_url(f"{base}/console/disputes/{did}")
    assert page.locator("#decision").count() == 1


def test_on_a_tablet_the_order_and_the_way_to_the_decision_come_before_the_narrative(
        dev: dict[str, Any], api: LocalApi, browse: Any) -> None:
    base = dev["base"]
    did = escalated_case(api, unique("o-tablet"), amount=2500)["dispute_id"]
    page = browse(viewport=(768, 1024)).page()
    sign_in(page, base, "m-10")
    open_case(page, base, did)
    order, deadlines = page.locator("#order-title").bounding_box(), page.locator("#deadlines-title").bounding_box()
    complaint = page.locator("#claim-title").bounding_box()
    assert order["y"] < complaint["y"] and deadlines["y"] < complaint["y"], "order and deadlines first"
    link = page.locator("#to-decision")
    assert link.is_visible() and link.bounding_box()["y"] < 1024, "the way to the decision is on the first screen"
    link.click()
    assert page.evaluate("() => document.getElementById('decide-title').getBoundingClientRect().top") < 1024
    wide = browse().page()
    sign_in(wide, base, "m-10")
    open_case(wide, base, did)
    assert wide.locator("#to-decision").is_hidden(), "two columns side by side need no jump"


def test_an_admin_edits_a_rule_through_its_preview_and_a_moderator_gets_no_edit_form(
        dev: dict[str, Any], api: LocalApi, browse: Any) -> None:
    base = dev["base"]
    escalated_case(api, unique("o-rule"))  # at least one recent dispute for the preview to consider
    rule_id = unique("rule")
    watched = browse()
    page = watched.page()
    sign_in(page, base, "a-1", admin=True)
    page.goto(f"{base}/console/rules")
    page.click("#new-rule")
    page.fill("input[name=rule_id]", rule_id)
    page.fill("textarea[name=description]", f"Escalate described-badly cases {XSS_IMG}")
    page.select_option("select[name=mode]", "DRY_RUN")
    page.fill("input[name=priority]", "3")
    page.check("input[name='reasons.NOT_AS_DESCRIBED']")
    page.select_option("select[name=then]", "ESCALATE")
    assert page.locator("#save-button").count() == 0, "no save before a preview"
    page.click("#preview-button")
    page.wait_for_selector("#preview")
    considered, matched = int(page.inner_text("#preview-considered")), int(page.inner_text("#preview-matched"))
    assert considered >= 1 and 1 <= matched <= considered
    assert int(page.inner_text("#preview-agreed")) + int(page.inner_text("#preview-disagreed")) == \
        int(page.inner_text("#preview-people"))
    assert "30 days" in page.inner_text("#preview")
    assert page.input_value("textarea[name=description]") == f"Escalate described-badly cases {XSS_IMG}"
    page.screenshot(path=str(IMAGES / "console-rule-preview.png"), full_page=True)
    page.click("#save-button")
    page.wait_for_url(re.compile(r"/console/rules\?notice=saved"))
    row = page.locator(f"#rule-{rule_id}")
    assert f"Escalate described-badly cases {XSS_IMG}" in row.inner_text()  # shown as text, ran nothing
    assert "dry run" in row.inner_text() and "v1" in row.inner_text()
    page.screenshot(path=str(IMAGES / "console-rules.png"), full_page=True)
    saved = [r for r in api.call("GET", "/moderation/rules", "m-1")["items"] if r["rule_id"] == rule_id]
    assert [(r["version"], r["mode"], r["when"], r["then"]) for r in saved] == [
        (1, "DRY_RUN", {"reasons": ["NOT_AS_DESCRIBED"]}, "ESCALATE")]

    plain = browse()
    moderator = plain.page()
    sign_in(moderator, base, "m-2")
    moderator.goto(f"{base}/console/rules")
    assert moderator.locator(f"#rule-{rule_id}").count() == 1
    assert moderator.locator("#new-rule, .edit-rule").count() == 0
    plain.expect(403)
    refused = moderator.goto(f"{base}/console/rules/{rule_id}/edit")
    assert refused.status == 403 and moderator.locator("#rule-form").count() == 0


def test_a_half_typed_decision_survives_a_note_and_the_way_back_from_the_confirmation(
        dev: dict[str, Any], api: LocalApi, browse: Any) -> None:
    base = dev["base"]
    did = escalated_case(api, unique("o-draft"), amount=2500)["dispute_id"]
    page = browse().page()
    sign_in(page, base, "m-11")
    open_case(page, base, did)
    rationale = "Half the set is missing:\nsee the buyer's photo <b>here</b>."
    page.select_option("select[name=outcome]", "REFUND_PARTIAL")
    page.fill("input[name=amount]", "12.50")
    page.select_option("select[name=fault]", "CARRIER")
    page.fill("textarea[name=rationale]", rationale)
    # a note added half way through reloads the page: the decision typed so far is still there
    page.fill("textarea[name=note]", "Asked the carrier about the weight at pickup.")
    page.click("#notes button[type=submit]")
    page.wait_for_url(re.compile(r"notice=note"))
    assert "Asked the carrier" in page.inner_text("#notes")
    typed = ("select[name=outcome]", "input[name=amount]", "select[name=fault]", "textarea[name=rationale]")
    assert [page.input_value(f"#decision {s}") for s in typed] == ["REFUND_PARTIAL", "12.50", "CARRIER", rationale]
    # to the confirmation and back, changing nothing: the same fields, and still nothing decided
    page.click("#decision button[type=submit]")
    page.wait_for_url(f"{base}/console/disputes/{did}/decision")
    assert page.inner_text("#confirm-amount") == "12.50 USD"
    assert page.locator("header form[action$='/console/sign-out']").count() == 1, "sign out from here too"
    page.click("#back-to-case")
    page.wait_for_selector("#decision")
    assert [page.input_value(f"#decision {s}") for s in typed] == ["REFUND_PARTIAL", "12.50", "CARRIER", rationale]
    assert api.call("GET", f"/disputes/{did}", "m-1")["status"] == "ESCALATED"
    # confirmed, the draft is gone: the case shows the decision and keeps no stale draft
    page.click("#decision button[type=submit]")
    page.wait_for_url(f"{base}/console/disputes/{did}/decision")
    page.click("text=Confirm decision")
    page.wait_for_url(re.compile(rf"/console/disputes/{did}\?notice=decided"))
    assert page.evaluate(f"() => sessionStorage.getItem('decision-draft:{did}')") is None
    resolution = api.call("GET", f"/disputes/{did}", "b-1")["resolution"]
    assert (resolution["outcome"], resolution["amount"]["amount"], resolution["fault"]) == (
        "REFUND_PARTIAL", 1250, "CARRIER")
    assert resolution["rationale"] == rationale
