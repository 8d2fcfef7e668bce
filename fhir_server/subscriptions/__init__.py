"""Topic-based Subscriptions (R4 Subscriptions Backport IG 1.1.0), rest-hook (issue 15; docs/subscriptions.md).

* ``topics.py`` — the Kazakhstan SubscriptionTopics (data in definitions/data) and their triggers;
* ``spec.py`` — what a Subscription asks for, checked at create/update (422 otherwise);
* ``ownership.py`` — whose a Subscription is (the creating request's identity);
* ``matching.py`` — the write-unit hooks: status and owner on write, events matched and queued;
* ``registry.py`` — the subscriptions served, their owners and event numbers;
* ``notification.py`` — the notification Bundle and SubscriptionStatus (R4 Parameters form);
* ``delivery.py`` / ``status.py`` — rest-hook delivery by the outbox worker, status changes;
* ``operations.py`` — ``$status`` and ``$events``; ``service.py`` — wiring into the application.
"""
