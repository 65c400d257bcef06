"""`make dev DEMO=1`: sample data for the console, made over the running API (its routes, use cases
and access rules, with tokens `make token` would print) and its evidence uploaded through the
presigned POST flow, so every photo is processed like a real one. Also the browser tests' way of
making cases (tests/browser).

What it makes: a queue of escalated cases with photos (one overdue), a refund that needs a person,
and a case in every other state."""
from __future__ import annotations

import io
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from PIL import Image, ImageDraw, ImageFilter

from local.token import make_service_token, make_token

SERVICE = "checkout"
MODERATOR = "m-demo"


def photo(colour: tuple[int, int, int], seed: int, size: tuple[int, int] = (1200, 900), damaged: bool = False) -> bytes:
    """A JPEG that looks like a phone photo of a garment on a table: light, shading, sensor noise."""
    rng = random.Random(seed)
    w, h = size
    image = Image.new("RGB", size, (214, 200, 180))
    draw = ImageDraw.Draw(image)
    for y in range(0, h, 6):  # the table's grain
        shade = 190 + rng.randint(-8, 8)
        draw.line([(0, y), (w, y + rng.randint(-4, 4))], fill=(shade, shade - 18, shade - 40), width=3)
    cx, cy = w // 2, h // 2
    body = [(cx - 160, cy - 250), (cx + 160, cy - 250), (cx + 260, cy + 300), (cx - 260, cy + 300)]
    draw.polygon(body, fill=colour)
    draw.polygon([(cx - 160, cy - 250), (cx - 330, cy - 120), (cx - 250, cy - 40), (cx - 140, cy - 150)], fill=colour)
    draw.polygon([(cx + 160, cy - 250), (cx + 330, cy - 120), (cx + 250, cy - 40), (cx + 140, cy - 150)], fill=colour)
    draw.ellipse([cx - 60, cy - 290, cx + 60, cy - 210], fill=(214, 200, 180))
    if damaged:
        draw.line([(cx - 80, cy), (cx + 40, cy + 140), (cx + 10, cy + 200)], fill=(40, 30, 30), width=9)
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    noise = Image.effect_noise(size, 18).convert("RGB")
    image = Image.blend(image, noise, 0.06)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


@dataclass
class LocalApi:
    """The running API, called as its clients call it, with locally signed tokens."""

    base: str
    mint: Callable[[str], str] | None = None  # who -> token; default: signed with this machine's local key
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, who: str) -> str:
        """The checkout service's token for SERVICE, a moderator's for ``m-...``, else a person's."""
        if who not in self.tokens:
            if self.mint is not None:
                self.tokens[who] = self.mint(who)
            elif who == SERVICE:
                self.tokens[who] = make_service_token(SERVICE, ["orders.write", "tracking.write"])
            else:
                self.tokens[who] = make_token(who, ["moderators"] if who.startswith("m-") else [])
        return self.tokens[who]

    def call(self, method: str, path: str, who: str, body: dict[str, Any] | None = None,
             expect: tuple[int, ...] = (200, 201)) -> Any:
        r = requests.request(method, f"{self.base}{path}", json=body, timeout=30,
                             headers={"Authorization": f"Bearer {self.token(who)}"})
        if r.status_code not in expect:
            raise AssertionError(f"{method} {path} as {who}: {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None


def now_iso(offset: float = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))


def delivered_order(api: LocalApi, order_id: str, buyer: str, seller: str, title: str, amount: int,
                    currency: str = "USD", tracking: str = "CN123456789") -> dict[str, Any]:
    """A paid order, shipped and delivered."""
    api.call("POST", "/orders", SERVICE, {
        "order_id": order_id, "buyer_id": buyer, "seller_id": seller, "estimated_delivery_at": now_iso(),
        "items": [{"item_id": "i-1", "title": title, "quantity": 1, "unit_price": {"amount": amount, "currency": currency}}],
        "total": {"amount": amount, "currency": currency}})
    shipped = api.call("POST", f"/orders/{order_id}/shipment", seller, {"carrier": "China Post",
                                                                         "tracking_number": tracking})
    return dict(api.call("POST", f"/orders/{order_id}/tracking-events", SERVICE,
                         {"status": "DELIVERED", "occurred_at": shipped["shipment"]["shipped_at"]}))


def open_dispute(api: LocalApi, order_id: str, buyer: str, description: str, reason: str = "NOT_AS_DESCRIBED",
                 requested: dict[str, Any] | None = None) -> dict[str, Any]:
    return dict(api.call("POST", f"/orders/{order_id}/disputes", buyer, {
        "reason": reason, "description": description, "requested": requested or {"type": "REFUND_FULL"}}))


def upload(api: LocalApi, dispute_id: str, who: str, file_name: str, content: bytes,
           content_type: str = "image/jpeg") -> str:
    """Ask for an upload slot and POST the file to it, as an app does; returns the evidence id."""
    slot = api.call("POST", f"/disputes/{dispute_id}/evidence", who,
                    {"file_name": file_name, "content_type": content_type, "size_bytes": len(content)})
    posted = requests.post(slot["upload"]["url"], data=slot["upload"]["fields"],
                           files={"file": (file_name, content, content_type)}, timeout=30)
    if posted.status_code not in (200, 201, 204):
        raise AssertionError(f"upload refused: {posted.status_code} {posted.text[:300]}")
    return str(slot["evidence_id"])


def wait_until(check: Callable[[], bool], timeout: float = 60, what: str = "a condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def wait_accepted(api: LocalApi, dispute_id: str, who: str, evidence_ids: list[str], timeout: float = 90) -> None:
    def done() -> bool:
        items = api.call("GET", f"/disputes/{dispute_id}/evidence", who)["items"]
        status = {e["evidence_id"]: e["status"] for e in items}
        if any(status.get(i) == "REJECTED" for i in evidence_ids):
            raise AssertionError(f"evidence rejected: {items}")
        return all(status.get(i) == "ACCEPTED" for i in evidence_ids)

    wait_until(done, timeout, "the evidence to be accepted")


def escalated_case(api: LocalApi, order_id: str, *, buyer: str = "b-1", seller: str = "s-1",
                   title: str = "Red summer dress", amount: int = 2500, description: str = "Ordered red, received blue",
                   file_name: str = "blue-dress.jpg", message: str = "It is clearly blue, see the photo.",
                   colour: tuple[int, int, int] = (40, 70, 190), reason: str = "NOT_AS_DESCRIBED",
                   wait: bool = True) -> dict[str, Any]:
    """An order delivered, a dispute with the buyer's photo and a message, refused by the seller and
    escalated: a case for the moderators' queue."""
    delivered_order(api, order_id, buyer, seller, title, amount)
    dispute = open_dispute(api, order_id, buyer, description, reason)
    did = dispute["dispute_id"]
    evidence = upload(api, did, buyer, file_name, photo(colour, seed=len(order_id) + amount,
                                                        damaged=reason == "DAMAGED_OR_DEFECTIVE"))
    api.call("POST", f"/disputes/{did}/messages", buyer, {"body": message})
    api.call("POST", f"/disputes/{did}/reject", seller, {"message": "The colour is as listed."})
    api.call("POST", f"/disputes/{did}/escalate", seller, {})
    if wait:
        wait_accepted(api, did, buyer, [evidence])
    return {"dispute_id": did, "order_id": order_id, "evidence_id": evidence}


def seed(base: str, tag: str | None = None) -> dict[str, Any]:
    """The demo set (see the module's docstring); ``tag`` keeps order ids unique per run."""
    api = LocalApi(base)
    tag = tag or time.strftime("%H%M%S")
    made: dict[str, Any] = {"escalated": []}
    queue = [("DAMAGED_OR_DEFECTIVE", "Ceramic vase", 4200, "The vase arrived cracked along the side.", (150, 120, 90)),
             ("NOT_AS_DESCRIBED", "Red summer dress", 2500, "Ordered red, received blue.", (40, 70, 190)),
             ("WRONG_ITEM", "Green wool scarf", 1800, "I received a yellow scarf, not the green one.", (220, 190, 40)),
             ("MISSING_PARTS", "Linen shirt, set of two", 3600, "Only one shirt was in the parcel.", (230, 230, 225))]
    for n, (reason, title, amount, description, colour) in enumerate(queue):
        made["escalated"].append(escalated_case(
            api, f"demo-{tag}-{n}", buyer=f"b-{n + 1}", seller=f"s-{n + 1}", title=title, amount=amount,
            description=description, file_name=f"photo-{n + 1}.jpg", colour=colour, reason=reason, wait=False))
    # The case the queue lists first (cases escalated within the same second tie on escalated_at,
    # so the queue, not the order they were made in, says which is oldest): its mediation overdue.
    ours = {c["dispute_id"] for c in made["escalated"]}
    listed = api.call("GET", "/moderation/disputes?limit=100", MODERATOR)["items"]
    oldest = next(d["dispute_id"] for d in listed if d["dispute_id"] in ours)
    api.call("POST", f"/sandbox/disputes/{oldest}/expire-deadline", MODERATOR)
    made["overdue"] = oldest

    # One case in each other state.
    states: dict[str, str] = {}
    delivered_order(api, f"demo-{tag}-wait", "b-7", "s-7", "Desk lamp", 3100)
    states["AWAITING_SELLER"] = open_dispute(api, f"demo-{tag}-wait", "b-7", "The lamp does not switch on.",
                                             "DAMAGED_OR_DEFECTIVE")["dispute_id"]
    delivered_order(api, f"demo-{tag}-nego", "b-8", "s-8", "Running shoes", 5400)
    did = open_dispute(api, f"demo-{tag}-nego", "b-8", "The left shoe is a size smaller.", "WRONG_ITEM")["dispute_id"]
    api.call("POST", f"/disputes/{did}/offers", "s-8", {"type": "REFUND_PARTIAL",
                                                         "amount": {"amount": 1000, "currency": "USD"},
                                                         "message": "Sorry! 10 USD back?"})
    states["NEGOTIATING"] = did
    delivered_order(api, f"demo-{tag}-ret", "b-9", "s-9", "Coffee grinder", 6900)
    did = open_dispute(api, f"demo-{tag}-ret", "b-9", "The grinder makes a grinding metal noise.",
                       "DAMAGED_OR_DEFECTIVE", {"type": "RETURN_AND_REFUND"})["dispute_id"]
    offer = api.call("GET", f"/disputes/{did}", "s-9")["offers"][0]["offer_id"]
    api.call("POST", f"/disputes/{did}/offers/{offer}/accept", "s-9", {})
    states["AWAITING_RETURN"] = did
    delivered_order(api, f"demo-{tag}-transit", "b-10", "s-10", "Bluetooth speaker", 4500)
    did = open_dispute(api, f"demo-{tag}-transit", "b-10", "The speaker crackles at any volume.",
                       "DAMAGED_OR_DEFECTIVE", {"type": "RETURN_AND_REFUND"})["dispute_id"]
    offer = api.call("GET", f"/disputes/{did}", "s-10")["offers"][0]["offer_id"]
    api.call("POST", f"/disputes/{did}/offers/{offer}/accept", "s-10", {})
    api.call("POST", f"/disputes/{did}/return-shipment", "b-10", {"carrier": "DHL", "tracking_number": "RT998877"})
    states["RETURN_IN_TRANSIT"] = did
    delivered_order(api, f"demo-{tag}-cancel", "b-11", "s-11", "Phone case", 900)
    did = open_dispute(api, f"demo-{tag}-cancel", "b-11", "Wrong colour, but I will keep it after all.",
                       "NOT_AS_DESCRIBED")["dispute_id"]
    api.call("POST", f"/disputes/{did}/cancel", "b-11", {})
    states["CANCELLED"] = did
    made["refund_needing_attention"] = _failed_refund(api, tag)
    states["RESOLVED"] = made["refund_needing_attention"]["dispute_id"]
    made["states"] = states
    for n, case in enumerate(made["escalated"]):
        wait_accepted(api, case["dispute_id"], f"b-{n + 1}", [case["evidence_id"]])
    return made


def _failed_refund(api: LocalApi, tag: str) -> dict[str, Any]:
    """A refund the provider refused in a way no retry mends by itself: a person must look."""
    for attempt in range(5):
        order_id = f"demo-{tag}-refund{attempt}"
        delivered_order(api, order_id, "b-12", "s-12", "Wireless earbuds", 7900)
        dispute = open_dispute(api, order_id, "b-12", "Only one earbud was in the box.", "MISSING_PARTS",
                               {"type": "REFUND_PARTIAL", "amount": {"amount": 3900, "currency": "USD"}})
        offer = dispute["offers"][0]["offer_id"]
        accepted = api.call("POST", f"/disputes/{dispute['dispute_id']}/offers/{offer}/accept", "s-12", {})
        refund_id = accepted["refund"]["refund_id"]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # until the attempt is at the provider, before it settles itself
            answer = requests.post(f"{api.base}/sandbox/orders/{order_id}/refunds/{refund_id}/settle", timeout=30,
                                   json={"outcome": "FAILED", "failure_reason": "charge_already_refunded"},
                                   headers={"Authorization": f"Bearer {api.token('b-12')}"})
            if answer.status_code == 200:
                return {"order_id": order_id, "refund_id": refund_id, "dispute_id": dispute["dispute_id"]}
            if answer.json().get("error", {}).get("details", {}).get("status") not in (None, "PENDING"):
                break  # it settled already: try with another order
            time.sleep(0.1)
    raise AssertionError("the simulated provider settled every refund before it could be failed")
