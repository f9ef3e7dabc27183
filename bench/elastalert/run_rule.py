"""Run one ElastAlert2 rule over a historical range of a real Elasticsearch, as
`elastalert-test-rule` does (writeback mocked, alerts not sent), and print what it found as
JSON: {"ms": wall time of run_rule, "hits": documents read, "matches": [{"key", "at"}]}.

    python run_rule.py CONFIG.yaml RULE.yaml START_ISO END_ISO

Used by bench/elastalert.ts (bench:detect) to put ElastAlert2 beside Gatewatch.
"""
import argparse
import datetime
import json
import sys
import time
from unittest import mock

from elastalert.config import load_conf
from elastalert.elastalert import ElastAlerter
from elastalert.util import lookup_es_key, ts_to_dt


def main(config, rule_file, start, end):
    args = argparse.Namespace(config=config, debug=True, verbose=False, es_debug=False,
                              es_debug_trace=None, rule=None, silence=None, start=None, end=None,
                              pin_rules=False, prometheus_port=None)
    conf = load_conf(args, {})
    rule = conf['rules_loader'].load_yaml(rule_file)
    conf['rules_loader'].load_options(rule, conf, rule_file)
    conf['rules_loader'].load_modules(rule, argparse.Namespace(debug=True))
    starttime = ts_to_dt(start)
    endtime = ts_to_dt(end)
    with mock.patch.object(conf['rules_loader'], 'get_hashes'):
        with mock.patch.object(conf['rules_loader'], 'load') as load_rules:
            load_rules.return_value = [rule]
            with mock.patch('elastalert.elastalert.load_conf') as lc:
                lc.return_value = conf
                client = ElastAlerter(['--debug'])
    client.writeback_es = mock.MagicMock()
    client.writeback_es.search.return_value = {'hits': {'hits': []}}
    found = []
    key = rule.get('query_key')

    def alert(matches, r, alert_time=None, retried=False):
        for m in matches:
            found.append({'key': lookup_es_key(m, key) if key else None, 'at': str(lookup_es_key(m, '@timestamp'))})

    with mock.patch.object(client, 'writeback'), mock.patch.object(client, 'alert', side_effect=alert):
        t = time.perf_counter()
        client.run_rule(rule, endtime, starttime)
        ms = (time.perf_counter() - t) * 1000
    print(json.dumps({'ms': ms, 'hits': rule.get('total_hits', 0), 'matches': found}))


if __name__ == '__main__':
    main(*sys.argv[1:5])
