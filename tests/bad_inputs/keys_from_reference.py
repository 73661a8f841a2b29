#!/usr/bin/env python3
"""Writes tests/bad_inputs/keys.tsv: for every key of the reference in scenarios/README.md,
the values it must refuse (below and above its range, a fraction for an integer, a value of
the wrong type, null where null is not allowed, a choice that does not exist), each in a
scenario where the key applies. Usage: keys_from_reference.py SOURCE_DIR [OUT]"""
import json
import re
import sys

src = sys.argv[1]
out_path = sys.argv[2] if len(sys.argv) > 2 else src + '/tests/bad_inputs/keys.tsv'
readme = open(src + '/scenarios/README.md').read()
ref = readme[readme.index('#### Scenario keys'):]
sections = re.split(r'^#### ', ref, flags=re.M)
rows = {}
for sec in sections:
    if not sec.strip(): continue
    title = sec.split('\n')[0]
    kind = 'scenario' if title.startswith('Scenario') else 'policy' if title.startswith('Policies') else 'optim' if title.startswith('Optimizers') else None
    if not kind: continue
    rows[kind] = []
    for line in sec.split('\n'):
        if not line.startswith('| `'): continue
        f = [x.strip() for x in line.split('|')[1:-1]]
        key = f[0].strip('`'); typ = f[1]; rng = f[3]; meaning = f[5]
        m = re.match(r'\*(\S+) only:\*', meaning)
        rows[kind].append((key, typ, rng, m.group(1) if m else None))

TAIL = '$TAIL'
cases = []
def add(name, kind, inp, want):
    assert '\t' not in inp and '\t' not in want, name
    cases.append((name, kind, inp, want))

def esc(path):  # regex for a key path
    return re.escape(path).replace('\\_', '_')

selector = {'workload.model': 'type', 'workload.dataset': 'type', 'workload.partition': 'type',
            'cluster.compute.speed': 'dist', 'cluster.compute.jitter': 'dist'}

def nest(path, value, variant):
    parts = path.split('.')
    inner = {parts[-1]: value}
    parent = '.'.join(parts[:-1])
    if variant and parent in selector:
        inner[selector[parent]] = variant
    obj = inner
    for p in reversed(parts[:-1]):
        obj = {p: obj}
    return obj

def bad_values(typ, rng):
    out = []
    m = re.match(r'in ([\[\(])(\S+), (\S+)([\]\)])', rng)
    if typ.startswith('integer') or typ.startswith('number'):
        isint = typ.startswith('integer')
        if m:
            lo, hi = float(m.group(2)), float(m.group(3))
            loinc, hiinc = m.group(1) == '[', m.group(4) == ']'
            if lo > -1e299:
                v = lo if not loinc else (lo - 1 if isint else (lo - 0.5 if lo != 0 else -0.001))
                out.append(('below', v))
            if hi < 1e299:
                v = hi if not hiinc else (hi + 1 if isint else hi * 2 if hi > 0 else 1)
                out.append(('above', v))
        if isint:
            out.append(('fraction', 2.5))
        out.append(('string', 'ten'))
        out.append(('array', [1]))
        if 'or null' not in typ:
            out.append(('null', None))
    elif typ == 'boolean':
        out.append(('string', 'yes'))
        out.append(('number', 1))
    elif typ == 'string':
        if rng.startswith('one of'):
            out.append(('choice', 'bogus'))
            out.append(('case', rng[len('one of '):].split(',')[0].strip().upper()))
        out.append(('number', 5))
    elif typ.startswith('array'):
        out.append(('object', {'a': 1}))
        out.append(('element', ['x']))
    elif typ == 'object':
        out.append(('scalar', 3))
    return out

def expect(typ, what):
    if what in ('below', 'above'):
        return 'expected (a number|an integer) .*in [\\[(]'
    if what == 'fraction':
        return 'expected an integer'
    if what in ('choice', 'case'):
        return 'expected one of'
    return 'expected'

def fmt(v):
    if isinstance(v, float) and v == int(v) and abs(v) < 1e15:
        return str(int(v)) if abs(v) >= 1 or v == 0 else repr(v)
    return json.dumps(v)

for key, typ, rng, variant in rows['scenario']:
    if key in ('policies', 'name', 'workload.dataset.dir', 'workload.dataset.path',
               'cluster.compute.trace', 'cluster.network.trace'):
        continue
    for what, v in bad_values(typ, rng):
        doc = nest(key, '@@V@@', variant)
        text = json.dumps(doc)
        text = text.replace('"@@V@@"', fmt(v))
        text = text[:-1] + ', ' + TAIL + '}' if key != 'stop' and not key.startswith('stop.') else text[:-1] + ', "policies": [{"type": "ddp"}]}'
        name = (key.replace('.', '_') + ('_' + variant if variant else '') + '_' + what).replace('-', '_')
        add(name, 'json', text, esc(key) + (r'\[0\]' if what == 'element' else '') + ': ' + expect(typ, what))

# policies: under policies[0], with the policy type
for key, typ, rng, variant in rows['policy']:
    if key in ('inner', 'outer', 'label', 'type'):
        continue
    for what, v in bad_values(typ, rng):
        pol = {'type': variant, key: '@@V@@'}
        text = '{"policies": [' + json.dumps(pol).replace('"@@V@@"', fmt(v)) + '], "stop": {"sim_time_s": 1}}'
        add('policy_%s_%s_%s' % (variant, key, what), 'json', text, r'policies\[0\]\.' + esc(key) + ': ' + expect(typ, what))

for key, typ, rng, variant in rows['optim']:
    if key == 'opt':
        continue
    for what, v in bad_values(typ, rng)[:3]:
        if variant == 'delayed_nesterov':
            pol = {'type': 'async_local_sgd', 'outer': {'opt': variant, key: '@@V@@'}}
            where = 'outer'
        else:
            pol = {'type': 'ddp', 'inner': {'opt': variant or 'sgd', key: '@@V@@'}}
            where = 'inner'
        text = '{"policies": [' + json.dumps(pol).replace('"@@V@@"', fmt(v)) + '], "stop": {"sim_time_s": 1}}'
        add('optim_%s_%s_%s' % (variant or 'any', key, what), 'json', text, r'policies\[0\]\.' + where + r'\.' + esc(key) + ': ' + expect(typ, what))

seen = set()
with open(out_path, 'w') as f:
    f.write('# Generated by tests/bad_inputs/keys_from_reference.py from the key reference in\n'
            '# scenarios/README.md (bad_inputs.sh checks that it is current). Fields: NAME KIND\n'
            '# INPUT MESSAGE, tab-separated; see bad_inputs.sh.\n')
    for c in cases:
        assert c[0] not in seen, c[0]
        seen.add(c[0])
        f.write('\t'.join(c) + '\n')
