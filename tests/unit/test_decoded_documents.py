"""DescribeTasks' cache of decoded task documents: a text seen before is handed out as decoded then; a changed
text is decoded afresh; what is handed out is the public view (no private part)."""
from __future__ import annotations

import json

from fargo.control.task_assignments import PRIVATE
from fargo.control.tasks import DecodedDocuments


def _public(doc: dict) -> dict:
    out = {k: v for k, v in doc.items() if k != PRIVATE}
    out.setdefault("tags", [])
    return out


def test_an_unchanged_text_is_handed_out_as_decoded_before_and_a_changed_one_afresh() -> None:
    documents = DecodedDocuments(_public)
    first = json.dumps({"taskArn": "a", "lastStatus": "PENDING", "version": 2, PRIVATE: {"eni": {"ip": "10.0.0.5"}}})
    one = documents.decode({"t1": first})["t1"]
    assert one == {"taskArn": "a", "lastStatus": "PENDING", "version": 2, "tags": []}
    # the same text read again (a new str from the store): the same object, not decoded again
    assert documents.decode({"t1": "".join(first)})["t1"] is one
    changed = json.dumps({"taskArn": "a", "lastStatus": "RUNNING", "version": 3, PRIVATE: {}})
    two = documents.decode({"t1": changed})["t1"]
    assert two is not one and two["lastStatus"] == "RUNNING" and PRIVATE not in two


def test_tasks_of_one_call_are_kept_apart() -> None:
    documents = DecodedDocuments(_public)
    texts = {f"t{i}": json.dumps({"taskArn": f"arn-{i}", "version": i}) for i in range(3)}
    out = documents.decode(texts)
    assert [out[f"t{i}"]["taskArn"] for i in range(3)] == ["arn-0", "arn-1", "arn-2"]
