"""The moderation table's items stay within DynamoDB's limits whatever a seller's size: a seller's
defect entries (from which distinct buyers are counted) are spread over member shards, so a month
with thousands of defects never makes one item near 400 KB, and the standing still counts them all."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta

from chalicelib.domain import standing as st
from chalicelib.services.moderation import read_standing
from tests.unit.world import new_world

ITEM_LIMIT = 400 * 1024  # DynamoDB's largest item


def item_bytes(counts: dict[str, int], members: set[str]) -> int:
    """An over-estimate of the item's size: attribute names, numbers and every set entry."""
    return 200 + sum(len(name) + 21 for name in counts) + sum(len(m.encode()) + 8 for m in members)


def test_a_month_of_thousands_of_defects_spreads_over_shards_well_under_the_item_limit() -> None:
    w = new_world()
    day = w.clock.now() - timedelta(days=1)
    defects = 6_000
    facts = []
    for i in range(defects):
        order_id = f"o-{uuid.uuid4()}"
        facts += st.order_registered(order_id, f"b-{uuid.uuid4()}", "s-huge", day)
        facts.append(st.defect(order_id, f"b-{uuid.uuid4()}-{i}", "s-huge", day))
    for start in range(0, len(facts), 500):  # as many commits as the changes were
        with w.services.moderation.uow() as uow:
            uow.record(facts[start:start + 500])
            uow.commit()
    items = {key: value for key, value in w.state.counters.items() if key[0] == st.seller_key("s-huge")}
    every_member = [m for counts, members in items.values() for m in members]
    assert sum(len(m.encode()) for m in every_member) > ITEM_LIMIT  # one set would not fit in one item
    month = st.month_bucket(day.date())
    assert not items[(st.seller_key("s-huge"), month)][1], "the counters' own item keeps no entries"
    assert items[(st.seller_key("s-huge"), month)][0]["defects"] == defects
    largest = max(item_bytes(counts, members) for counts, members in items.values())
    assert largest < ITEM_LIMIT // 4, largest
    assert len([k for k in items if k[1].startswith(month + "#")]) == st.MEMBER_SHARDS
    with w.services.moderation.uow() as uow:
        standing, _ = read_standing(uow.moderation, "s-huge", w.clock.now(), w.policy)
    assert (standing.orders, standing.defects, standing.defective_buyers) == (defects, defects, defects)
    assert json.loads(every_member[0])[1].startswith("o-")
