"""Spend control: alert rules and their evaluation, channels, caps and authorize (issue 8).

Pure engines beside their persistence, as in ``core.ledger``:

    crossing.py       fire / resolve / nothing for a state and a new value (pure)
    rules.py          what each alert kind measures, its threshold and its words (pure)
    measure.py        spend in a scope this period, run rate, runway, from the daily rollup
    alerts.py         rules and webhook endpoints: create, edit, pause, delete; history views
    caps.py           spend caps per day, week or month (soft or hard; they stack) and the overdraft
    evaluate.py       evaluate rules and caps, record firings, notifications and deliveries
    deliveries.py     the outbox: send email and signed webhooks, retry with backoff
    channels.py       SMTP, webhook signing and posting (to checked, pinned addresses)
    webhook_targets.py  where a webhook may connect: the host resolved once, every answer checked
    notifications.py  the in-app notification centre
    authorize.py      the authorize decision (pure) and its in-process snapshots
    runtime.py        post-ingestion worker and authorizer beside a running API
    api.py            the ``POST /api/v1/authorize`` route
    api_commands.py   caps and alert rules changed through the HTTP API: checked, made, audited
    api_shapes.py     the JSON of a cap and an alert rule (API answers and audit entries)
    change_log.py     the audit entries of those changes, and the Idempotency-Key of a create
    projection.py     where daily spend is heading, with a calibrated band; the backtest (pure)
    runway.py         when the balance runs out, what expiring grants get used for (pure)
    backtest.py       read a daily date,amount CSV for ``meterline spend backtest``
    overview.py       the Overview page's read view (per account, project and meter)

Import from the modules themselves; this package keeps no state.
"""
