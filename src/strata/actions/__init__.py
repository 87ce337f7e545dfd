"""Acting on segments: when customers enter or leave a segment, Strata acts.

- :mod:`strata.actions.triggers`: enter, exit and scheduled triggers; every firing recorded.
- :mod:`strata.actions.automations`: when → wait and condition → do.
- :mod:`strata.actions.webhooks`: Standard Webhooks, signed, retried for days, with a log.
- :mod:`strata.actions.email`: templated e-mail through the workspace's SMTP server.
- :mod:`strata.actions.exports`: files for spreadsheets, Mailchimp, Klaviyo, HubSpot, Google, Meta.
- :mod:`strata.actions.syncs`: lists kept in step in Mailchimp, Klaviyo and HubSpot.
- :mod:`strata.actions.campaigns`: an action with a holdout, and its measured lift.
"""
