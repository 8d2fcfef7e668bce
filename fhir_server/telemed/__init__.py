"""Remote consultations (issue 19): the telecom session of a consultation Encounter (TM-02, TM-20, TM-21),
the attachments exchanged during it, the public offer and informed consent a remote booking needs
(TM-03, TM-07), and a Slot booked only once (TM-06, slots.py). docs/consultation.md."""

from __future__ import annotations

from typing import Any


def install(services: Any) -> None:
    """Wire the write validators (and the booking rule) into the server's services, once."""
    from fhir_server.telemed.attachments import AttachmentRules
    from fhir_server.telemed.booking import BookingTerms, offer_issues
    from fhir_server.telemed.consilium import ConsiliumOpinions
    from fhir_server.telemed.recommendations import recommendation_issues, recommendation_sent
    from fhir_server.telemed.session_extension import session_issues
    from fhir_server.telemed.slots import SlotBooking

    if session_issues not in services.extra_validators:
        services.extra_validators.append(session_issues)  # no join link is ever stored (TM-21)
        services.extra_validators.append(AttachmentRules(services.settings))  # TM-02 size, type, virus scan
        services.extra_validators.append(offer_issues(services.profiles))  # a public offer has its terms (TM-03)
        # TM-03/TM-07: a remote booking needs the current offer accepted and informed consent
        services.change_hooks.append(BookingTerms(services.settings.remote_booking_consent))
        services.change_hooks.append(SlotBooking())  # TM-06: a Slot is booked once, freed when cancelled
        services.extra_validators.append(recommendation_issues)  # TM-16: to the patient, on the care plan
        services.change_hooks.append(recommendation_sent)  # TM-16: a sent recommendation reaches the patient
        services.change_hooks.append(ConsiliumOpinions())  # TM-08: a consilium's participants give opinions
        if services.settings.nehp_auto_submit:
            from fhir_server.jobs.nehp_delivery import finished_service

            services.change_hooks.append(finished_service)  # TM-11/TM-19: a finished service is delivered
