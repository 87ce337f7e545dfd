"""The background workers of a running server: webhooks, e-mail, automations, retention."""

from __future__ import annotations

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

    @cached_property
    def retention(self):
        from strata.privacy.retention import RetentionWorker

        writing = self.stores.writing if self.stores is not None else None
        return RetentionWorker(self.app, writing=writing)

    #: Started in this order, stopped in the reverse one.
    WORKERS = ("webhooks", "mail", "automations", "retention")

    def start(self) -> None:
        for name in self.WORKERS:
            getattr(self, name).start()

    def stop(self) -> None:
        for name in reversed(self.WORKERS):
            if name in self.__dict__:
                self.__dict__[name].stop()
