"""The Redis element header and dead-letter encoding, without a server."""

from __future__ import annotations

from asynctasq.drivers import redis_format as form


def test_an_element_carries_a_unique_id_the_lease_and_the_count_before_the_body() -> None:
    ids = form.ElementIds()
    one = ids.element(b"a:b", 1.5)
    two = ids.element(b"a:b", 1.5)
    assert one != two
    delivery = form.delivery("q", one.replace(b":1500:0:", b":1500:3:"))
    assert (delivery.queue, delivery.body, delivery.delivery_count) == ("q", b"a:b", 3)
    assert delivery.visibility_timeout_seconds == 1.5
    assert form.lease_ms(one) == 1500


def test_leases_and_delays_round_up_to_whole_milliseconds() -> None:
    assert form.to_ms(0.0001) == 1
    assert form.to_ms(2) == 2000
    assert form.lease_ms(form.ElementIds().element(b"", 0)) == 1


def test_keys_follow_the_spec() -> None:
    assert form.ready_key("mail") == "queue:mail"
    assert form.processing_key("mail") == "queue:mail:processing"
    assert form.delayed_key("mail") == "queue:mail:delayed"
    assert form.dead_key("mail") == "queue:mail:dead"


def test_a_queue_name_ending_in_a_key_suffix_is_refused_naming_the_queue_it_would_hit() -> None:
    assert form.queue_name_problem("nu-a:dead") == (
        "names ending in ':dead' are taken: the Redis driver keeps each queue's dead letters "
        "under 'queue:<name>:dead', so this name's list would be the dead letters of queue "
        "'nu-a'"
    )
    for suffix in form.SUFFIXES:
        assert form.queue_name_problem(f"a{suffix}") is not None


def test_other_queue_names_are_accepted_colons_included() -> None:
    for name in ("mail", "a:b", "dead", "a:dead:x", "a_dead", "processing"):
        assert form.queue_name_problem(name) is None
