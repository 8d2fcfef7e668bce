"""Subscriptions (R4 Subscriptions Backport IG 1.1.0, topic-based, and classic R4 criteria), rest-hook
and websocket (issue 15; docs/subscriptions.md).

* ``topics.py`` — the Kazakhstan SubscriptionTopics (data in definitions/data) and their triggers;
* ``events.py`` — the one event source: topic events for the patient notices and the subscriptions;
* ``spec.py`` — what a Subscription asks for, checked at create/update (422 otherwise);
* ``ownership.py`` — whose a Subscription is (the creating request's identity);
* ``matching.py`` — the write-unit hooks: status and owner on write, events matched and queued;
* ``registry.py`` — the subscriptions served, their owners and event numbers;
* ``notification.py`` — the notification Bundle and SubscriptionStatus (R4 Parameters form);
* ``delivery.py`` / ``status.py`` — delivery by the outbox worker, status changes;
* ``websocket.py`` — the websocket endpoint, its connections and binding tokens;
* ``operations.py`` — ``$status``, ``$events``, ``$get-ws-binding-token``; ``service.py`` — wiring.
"""
