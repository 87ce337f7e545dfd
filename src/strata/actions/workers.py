"""The background workers of a running server: webhooks, e-mail, automations."""

from __future__ import annotations

import importlib.util
from functools import cached_property

from strata.context import Strata


class ActionWorkers:
    """Holds the action threads of one server; each starts with it and stops with it.

    ``stores`` gives each thread its own warehouse connection (the server's
    :class:`~strata.api.state.Service`); without it the runner shares ``app``'s.
    """

    def __init__(self, app: Strata, stores=None):
        self.app = app
        self.stores = stores

    @cached_property
    def webhooks(self):
        from strata.actions.webhooks import WebhookSender

        return WebhookSender(self.app)

    @cached_property
    def mail(self):
        from strata.actions.email import MailSender

        return MailSender(self.app)

    @cached_property
    def automations(self):
        from strata.actions.automations import AutomationRunner

        return AutomationRunner(
            self.app,
            stores=self.stores,
            on_webhook=lambda: self.webhooks.wake(),
            on_mail=lambda: self.mail.wake(),
        )

    def _present(self) -> list[str]:
        names = {
            "webhooks": "strata.actions.webhooks",
            "mail": "strata.actions.email",
            "automations": "strata.actions.automations",
        }
        return [n for n, module in names.items() if importlib.util.find_spec(module)]

    def start(self) -> None:
        for name in self._present():
            getattr(self, name).start()

    def stop(self) -> None:
        for name in reversed(self._present()):
            if name in self.__dict__:
                self.__dict__[name].stop()
