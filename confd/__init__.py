"""A confd-style agent (catalogue item S2): it watches the instances, weights and
routes registered in etcd and keeps nginx's upstream configuration in step.

    resources.py   conf.d/*.toml: what to render from which keys, to where
    services.py    etcd keys -> services (pure)
    grace.py       the empty grace (pure)
    render.py      the Jinja2 template of a resource
    reload.py      atomic swap, check, reload, or the previous file back
    etcd_view.py   reads and watch streams: the only module that talks to etcd
    status.py      the status kept for ``--status-file``
    agent.py       the loop tying them together
    cli.py         ``shipway confd``
"""
