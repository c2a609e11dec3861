//! Table-driven differential tests against the real helm 3.17 and 4.1: Helm's own strvals and
//! coalesce cases (rewritten as data), YAML 1.1 scalars, nulls deleting defaults, globals into
//! subcharts, aliases, list growth, conditions, tags and import-values. For every case kantup's
//! values must equal helm's, helm given kantup's merged file must render the same, and when
//! helm fails kantup must fail too.

mod common;

use common::{Inputs, TestChart, Verdict, compare, helms, write_file};
use kantup_helm_values::strvals::SetKind::{self, *};

/// (flag kind, expression). Each case runs alone against a chart with a few defaults.
const STRVALS_CASES: &[&[(SetKind, &str)]] = &[
    &[(Set, "name1=value1")],
    &[(Set, "name1=value1,name2=value2")],
    &[(Set, "name1=value1,name2=value2,")],
    &[(Set, "name1=value1,,,,name2=value2,")],
    &[(Set, "name1=,name2=value2")],
    &[(Set, "leading_zeros=00009")],
    &[(Set, "zero_int=0")],
    &[(Set, "long_int=1234567890")],
    &[(Set, "big_int=9223372036854775807")],
    &[(Set, "too_big=9223372036854775808")],
    &[(Set, "boolean=true,other=FALSE,nil=Null")],
    &[(Set, "is_null=null")],
    &[(Set, "name1,name2=")],
    &[(Set, "name1,name2=value2")],
    &[(Set, "name1,name2=value2\\")],
    &[(Set, "name1,name2")],
    &[(Set, "name1=one\\,two,name2=three\\,four")],
    &[(Set, "name1=one\\=two,name2=three\\=four")],
    &[(Set, "name1=one two three,name2=three two one")],
    &[(Set, "outer.inner=value")],
    &[(Set, "outer.middle.inner=value")],
    &[(Set, "outer.inner1=value,outer.inner2=value2")],
    &[(Set, "outer.inner1=value,outer.middle.inner=value")],
    &[(Set, "name1.name2")],
    &[(Set, "name1.name2,name1.name3")],
    &[(Set, "name1.=name2")],
    &[(Set, "name1.,name2")],
    &[(Set, "name1={value1,value2}")],
    &[(Set, "name1={value1,value2},name2={value1,value2}")],
    &[(Set, "name1={1021,902}")],
    &[(Set, "name1.name2={value1,value2}")],
    &[(Set, "name1={}")],
    &[(Set, "name1={a")],
    &[(Set, "list[0]=foo")],
    &[(Set, "list[0].foo=bar")],
    &[(Set, "list[0].foo=bar,list[0].hello=world")],
    &[(Set, "list[0].foo=bar,list[-30].hello=world")],
    &[(Set, "list[0]=foo,list[1]=bar")],
    &[(Set, "list[0]=foo,list[1]=bar,")],
    &[(Set, "list[0]=foo,list[3]=bar")],
    &[(Set, "list[0]=foo,list[-20]=bar")],
    &[(Set, "illegal[0]name.foo=bar")],
    &[(Set, "noval[0]")],
    &[(Set, "noval[0]=")],
    &[(Set, "nested[0][0]=1")],
    &[(Set, "nested[1][1]=1")],
    &[(Set, "name1.name2[0].foo=bar,name1.name2[1].foo=bar")],
    &[(Set, "name1.name2[1].foo=bar,name1.name2[0].foo=bar")],
    &[(Set, "name1.name2[1].foo=bar")],
    &[(Set, "]={}].")],
    &[(Set, "key[0]=value,key=value")],
    &[(Set, "key=value,key[0]=value")],
    &[(Set, "a=1,a.b=2")],
    &[(Set, "a[x]=1")],
    &[(Set, "a[1")],
    &[(Set, "a[65537]=1")],
    &[(Set, "a[1][65537]=1")],
    &[(Set, "a[2].b[1].c=x,a[0]=y")],
    &[(Set, "a[1]=x,a[1].b=y")],
    &[(Set, "a[0][1]=x,a[0].b=y")],
    &[(
        Set,
        "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.aa.bb.cc.dd=1",
    )],
    &[(
        Set,
        "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.aa.bb.cc.dd.ee=1",
    )],
    &[(Set, "dotted\\.key=1,with\\[bracket=2")],
    &[(Set, "image.tag=1.10,image.pull=null,def.keep=null")],
    &[(Set, "list={a,b},list[3]=c")],
    &[(
        SetString,
        "long_int_string=1234567890,boolean=true,is_null=null,zero=0",
    )],
    &[(SetString, "list={1,true},a.b=null")],
    &[(
        SetJson,
        "outer.inner1=\"1\",outer.inner3={\"aa\":\"1\",\"bb\":2,\"cc\":[1,2,3]},outer.inner4=[\"aa\",\"bb\",\"cc\"]",
    )],
    &[(
        SetJson,
        "outer.inner1=1e3,outer.inner2=12345678901234567890",
    )],
    &[(SetJson, "outer.inner1=null,def.x=")],
    &[(SetJson, "list[0]={\"a\":1},list[2]=[1,2]")],
    &[(SetJson, "a=[1,2], b=3")],
    &[(SetJson, "a={\"b\":}")],
    &[(SetLiteral, "name=value,with,commas")],
    &[(SetLiteral, "a.b=c=d{x,y}")],
    &[(SetLiteral, "a\\.b=x")],
    &[(SetLiteral, "list[1]=a,b")],
    &[(SetLiteral, "def.keep=null")],
    &[(SetLiteral, "novalue")],
    // Merge order between flag kinds: literal beats file beats string beats set beats json.
    &[
        (SetLiteral, "o.a=literal"),
        (SetString, "o.a=string,o.b=string"),
        (Set, "o.a=set,o.b=set,o.c=set"),
        (
            SetJson,
            "o.a=\"json\",o.b=\"json\",o.c=\"json\",o.d=\"json\"",
        ),
    ],
    &[(Set, "a.b=1"), (Set, "a=null"), (Set, "a.c=2")],
    &[(Set, "def=x")],
    &[(Set, "def.map.k=v,def.list[1]=z")],
    &[(Set, "global.g=1,sub.s=2,alias1.s=3")],
    &[(Set, "sub=x")],
    &[(Set, "global=x")],
];

const PARENT_DEFAULTS: &str = "\
# defaults of the test chart
def:
  keep: kept
  map: {a: 1, b: [1, 2]}
  list: [x, y]
image:
  tag: '1.0'
  pull: IfNotPresent
global:
  g: parent
  gm: {x: 1}
sub:
  s: from-parent
";
const SUB_DEFAULTS: &str = "\
s: sub-default
t: [1, 2]
global:
  g: sub
  gm: {y: 2}
  own: sub-global
";

#[test]
fn strvals_cases_match_helm() {
    let tmp = tempfile::tempdir().unwrap();
    let chart = TestChart::standard(tmp.path(), PARENT_DEFAULTS, SUB_DEFAULTS);
    let mut failures = Vec::new();
    let mut agreed_errors = 0;
    for (name, helm) in helms() {
        for (i, case) in STRVALS_CASES.iter().enumerate() {
            let inputs = Inputs {
                files: vec![],
                flags: case.iter().map(|(k, e)| (*k, e.to_string())).collect(),
                ..Default::default()
            };
            match compare(&helm, &chart.dir, &inputs, &tmp.path().join("work")) {
                Verdict::Same => {}
                Verdict::BothFailed { .. } => agreed_errors += 1,
                Verdict::Mismatch(m) => failures.push(format!("{name} case {i} {case:?}: {m}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // Helm rejects a good share of these inputs; kantup must have rejected the same ones.
    assert!(
        agreed_errors >= 2 * 15,
        "only {agreed_errors} agreed errors"
    );
}

/// Values files: YAML 1.1 scalars, keys, nulls deleting defaults, lists replacing, maps
/// merging, globals, aliases; each (files, flags) case alone.
/// (values files, flags).
type FileCase = (&'static [&'static str], &'static [(SetKind, &'static str)]);

const FILE_CASES: &[FileCase] = &[
    (
        &["y11: [yes, Yes, YES, y, Y, on, On, ON, no, n, N, off, OFF, true, False]\n"],
        &[],
    ),
    (
        &[
            "n: [0x1F, 0o17, 017, 08, 0b101, -0x1F, 1_000, 1e3, 1.5, .5, -.5, 1e21, 12345678901234567890, 9007199254740993, +12, 0., -0.0, 1.0]\n",
        ],
        &[],
    ),
    (
        &[
            "s: [~, null, Null, NULL, '', 2001-12-14, 2001-12-14t21:59:43.10-05:00, 1e400, tRUE, _1, '0x1F', \"yes\", !!str 12, 1:2, a:b]\n",
        ],
        &[],
    ),
    (&["1: a\nyes: b\nno: c\n1.5: d\n0x10: e\n~x: f\n"], &[]),
    (&["a: .nan\n"], &[]),
    (&["a: .inf\n"], &[]),
    (&["- list\n"], &[]),
    (&["a: [\n"], &[]),
    (&[""], &[]),
    (&["# only a comment\n"], &[]),
    (
        &["base: &b {x: 1, z: 2}\nd:\n  <<: *b\n  z: 3\nalias: *b\n"],
        &[],
    ),
    (&["def: null\n"], &[]),
    (&["def: {keep: null, map: {a: null}}\n"], &[]),
    (
        &["def: {map: {b: [3]}, list: null}\n", "def: {map: {c: 3}}\n"],
        &[],
    ),
    (&["def: {map: x}\n"], &[]),
    (&["def: [1]\n"], &[]),
    (&["image: {tag: 2.0}\n", "image: {tag: \"2.0\"}\n"], &[]),
    (&["a: {b: 1}\n", "a: 3\n", "a: {c: 1}\n"], &[]),
    (&["nul: {x: null}\n"], &[(Set, "nul.y=null")]),
    (&["global: {g: user, gm: {z: 3}, new: {n: 1}}\n"], &[]),
    (&["global: {gm: null}\n"], &[]),
    (&["global: {gm: 5}\n"], &[]),
    (&["global: 5\n"], &[]),
    (&["sub: {global: {g: in-sub}, s: null, t: [9]}\n"], &[]),
    (&["alias1: {s: aliased, t: null}\nsub: {s: plain}\n"], &[]),
    (&["sub: {s: {deep: map}}\n"], &[]),
    (&["sub: null\n"], &[]),
    (&["alias1: [1]\n"], &[]),
    (&["list: [a, b, c]\n"], &[(Set, "list[1]=B,list[5]=F")]),
    (&["list: [a, b, c]\n"], &[(Set, "list={x}")]),
    (&["m: {a: 1}\n"], &[(Set, "m.a.b=1")]),
    (&["m: {a: [1, 2]}\n"], &[(Set, "m.a[1].b=1")]),
    (&["m: {a: [[1], 2]}\n"], &[(Set, "m.a[0][2]=z,m.a[3][0]=w")]),
    (&["m: {a: [1, 2]}\n"], &[(Set, "m.a[1][0]=z")]),
    (&["big: 1\n"], &[(Set, "big=9007199254740993")]),
    (&["x: 1\n"], &[(SetJson, "x={\"k\":1.5e300}")]),
    (&["weird: \"tab\\there\\u0085nel\\u2028ls <&>\"\n"], &[]),
    (&["multi: |\n  line1\n  line2\nfolded: >\n  a\n  b\n"], &[]),
    // Block scalars and anchors as kantup's fast path reads them.
    (
        &[
            "lead: |\n\n  x\nlit: |\n  line1\n\n  line3\n    indented\n  \n  end\nstrip: |-\n  s\n\n\nkeep: |+\n  k\n\n\nfold: >\n  a\n  b\n\n  c\nspaced: >\n  a\n    b\n\n  c\n  d\nfk: >+ # comment\n  z\n\nfs: >-\n  x\n  y\nhdr: | # c\n  text # not a comment\n  #also text\n# trailing comment\nlast: |\n  at the end\n",
        ],
        &[],
    ),
    (
        &["list:\n- |\n  one\n- >-\n  two\n  three\n- k: |\n    nested\n  j: 1\n- |+\n   kept\n\n"],
        &[],
    ),
    (
        &[
            "base: &b\n  x: 1\n  list: [a, b]\ns: &s str\nn: &n\nt: &t |\n  text\nuse:\n  b: *b\n  s: *s\n  n: *n\n  t: *t\nlist:\n- &i {k: v}\n- *i\n- *b\nre: &s 2\nlater: *s\n",
        ],
        &[],
    ),
    (
        &[
            "commonLabels: &labels\n  app.kubernetes.io/part-of: platform\n  team: core\nc0:\n  labels: *labels\n  config: |\n    # generated\n    server.port=8080\n  ingress:\n    hosts: [\"svc0.example.com\"]   # the public name\n",
        ],
        &[],
    ),
    (
        &[
            "esc: ['a: b', '- x', '#c', 'x #y', '@at', '`tick', '\"q\"', \"it's\", '{a}', '[b]', '*s', '&a', '!t', '%p', '|p', '>g', '?q', ',c']\n",
        ],
        &[],
    ),
];

#[test]
fn values_file_cases_match_helm() {
    let tmp = tempfile::tempdir().unwrap();
    let chart = TestChart::standard(tmp.path(), PARENT_DEFAULTS, SUB_DEFAULTS);
    let mut failures = Vec::new();
    let mut agreed_errors = 0;
    for (name, helm) in helms() {
        for (i, (files, flags)) in FILE_CASES.iter().enumerate() {
            let case_dir = tmp.path().join(format!("case{i}"));
            let paths = files
                .iter()
                .enumerate()
                .map(|(j, text)| {
                    let p = case_dir.join(format!("values{j}.yaml"));
                    write_file(&p, text);
                    p
                })
                .collect();
            let inputs = Inputs {
                files: paths,
                flags: flags.iter().map(|(k, e)| (*k, e.to_string())).collect(),
                ..Default::default()
            };
            match compare(&helm, &chart.dir, &inputs, &case_dir) {
                Verdict::Same => {}
                Verdict::BothFailed { .. } => agreed_errors += 1,
                Verdict::Mismatch(m) => {
                    failures.push(format!("{name} case {i} {files:?} {flags:?}: {m}"))
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(agreed_errors >= 2 * 4, "only {agreed_errors} agreed errors");
}

#[test]
fn set_file_matches_helm() {
    let tmp = tempfile::tempdir().unwrap();
    let chart = TestChart::standard(tmp.path(), PARENT_DEFAULTS, SUB_DEFAULTS);
    let content = tmp.path().join("content.txt");
    write_file(&content, "line: one\nyes\n");
    let flags = [
        (
            SetFile,
            format!(
                "cfg.text={},cfg.list={{{},{}}}",
                content.display(),
                content.display(),
                content.display()
            ),
        ),
        (
            SetFile,
            format!("missing={}", tmp.path().join("nope").display()),
        ),
    ];
    for (name, helm) in helms() {
        let ok = Inputs {
            flags: flags[..1].to_vec(),
            ..Default::default()
        };
        assert!(
            matches!(compare(&helm, &chart.dir, &ok, tmp.path()), Verdict::Same),
            "{name}"
        );
        let missing = Inputs {
            flags: flags[1..].to_vec(),
            ..Default::default()
        };
        let v = compare(&helm, &chart.dir, &missing, tmp.path());
        assert!(matches!(v, Verdict::BothFailed { .. }), "{name}: {v:?}");
    }
}

/// Conditions, tags and import-values decide which subcharts exist and what the parent sees.
#[test]
fn dependency_conditions_tags_and_imports_match_helm() {
    let deps = "dependencies:
- name: sub
  version: 0.1.0
  condition: sub.enabled,global.subEnabled
  tags: [front]
- name: sub
  version: 0.1.0
  alias: alias1
  tags: [back]
  import-values:
  - data
  - child: t
    parent: fromChild
- name: sub
  version: '>=0.1.0'
  alias: alias2
  condition: alias2.enabled
";
    let sub_values = "s: sub\nt: {a: 1}\nexports:\n  data:\n    imported: yes\n";
    let parent_values = "sub:\n  enabled: true\nalias2:\n  enabled: false\nimported: parent-wins\n";
    let cases: &[&[(SetKind, &str)]] = &[
        &[],
        &[(Set, "sub.enabled=false")],
        &[(Set, "sub.enabled=notbool,global.subEnabled=false")],
        &[(Set, "tags.front=false")],
        &[(Set, "tags.front=false,sub.enabled=true")],
        &[(Set, "tags.back=false,tags.front=true")],
        &[(Set, "alias2.enabled=true,alias2.s=x")],
        &[(Set, "tags.back=notbool")],
    ];
    let tmp = tempfile::tempdir().unwrap();
    let chart = TestChart::write(tmp.path(), parent_values, sub_values, deps);
    let mut failures = Vec::new();
    for (name, helm) in helms() {
        for case in cases {
            let inputs = Inputs {
                files: vec![],
                flags: case.iter().map(|(k, e)| (*k, e.to_string())).collect(),
                ..Default::default()
            };
            if let v @ (Verdict::Mismatch(_) | Verdict::BothFailed { .. }) =
                compare(&helm, &chart.dir, &inputs, tmp.path())
            {
                failures.push(format!("{name} {case:?}: {v:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Tables nested under `global` are shared between the parent and its subcharts while Helm
/// coalesces (each subchart gets a one-level copy of the parent's `global` tables), so what a
/// subchart's globals add below that level also shows in the parent's `.Values.global`.
/// (parent values.yaml, subchart values.yaml, user values file); the first two are the two
/// generated cases (seed 0x6b616e74, cases 2582 and 4056) that once differed, minimized.
const SHARED_GLOBAL_CASES: &[(&str, &str, &str)] = &[
    // A null the parent's coalescing deleted from `global.c.x.k` comes back through the
    // subchart's copy of the parent's defaults (Helm 3).
    (
        "global: {c: {x: {k: {l: 1, t: null}}}}\n",
        "s: 1\n",
        "global: {c: {x: {k: {a: null, t: null}}}}\n",
    ),
    // The same one level higher: `global.c.b` is already shared.
    (
        "global: {c: {b: {d: 1, t: null}}}\n",
        "s: 1\n",
        "global: {c: {b: {t: null}}}\n",
    ),
    // A subchart's own global defaults below the copied level reach the parent.
    (
        "global: {c: {b: {p: 1}}}\n",
        "global: {c: {b: {fromsub: 1, p: 2}, own: 1}, top: 1}\n",
        "global: {c: {b: {u: 1}}}\n",
    ),
    // A subchart's user-supplied globals below the copied level, and a null among them.
    (
        "global: {c: {b: {p: 1, q: null}}}\n",
        "s: 1\n",
        "global: {c: {b: {q: null}}}\nsub: {global: {c: {b: {fromuser: 1, q: 2}}}}\n",
    ),
];

#[test]
fn nested_global_tables_shared_with_subcharts_match_helm() {
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, (parent, sub, user)) in SHARED_GLOBAL_CASES.iter().enumerate() {
        let case_dir = tmp.path().join(format!("case{i}"));
        let chart = TestChart::standard(&case_dir, parent, sub);
        let file = case_dir.join("user.yaml");
        write_file(&file, user);
        let inputs = Inputs {
            files: vec![file],
            ..Default::default()
        };
        for (name, helm) in helms() {
            let v = compare(&helm, &chart.dir, &inputs, &case_dir.join(name));
            if !matches!(v, Verdict::Same) {
                failures.push(format!("{name} case {i}: {v:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
