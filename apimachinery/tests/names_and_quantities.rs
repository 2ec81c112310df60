//! The name format checks against the examples of Kubernetes' own tests, and quantities.

use apimachinery::validation::{Quantity, is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_label_value};

#[test]
fn dns1123_labels() {
    let good = ["a", "ab", "abc", "a1", "a-1", "a--1--2--b", "0", "01", "012", "1a", "1-a", "1--a--b--2", &"a".repeat(63)];
    for name in good {
        assert!(is_dns1123_label(name).is_empty(), "{name} should be a label");
    }
    let bad = [
        "", "A", "ABC", "aBc", "A1", "A-1", "1-A", "-", "a-", "-a", "1-", "-1", "_", "a_", "_a", "a_b", "1_", "_1", "1_2", ".", "a.", ".a",
        "1.", ".1", " ", "a ", " a", "a b", "1 ", " 1", "1 2", &"a".repeat(64),
    ];
    for name in bad {
        assert!(!is_dns1123_label(name).is_empty(), "{name:?} should not be a label");
    }
    assert_eq!(is_dns1123_label("a.b"), vec!["must not contain dots"]);
    assert_eq!(
        is_dns1123_label("Foo"),
        vec!["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]
    );
    assert_eq!(is_dns1123_label(&"a".repeat(64)), vec!["must be no more than 63 characters"]);
}

#[test]
fn dns1123_subdomains() {
    let good = [
        "a", "ab", "abc", "a1", "a-1", "a--1--2--b", "0", "01", "012", "1a", "1-a", "1--a--b--2", "a.a", "ab.a", "abc.a", "a1.a", "a-1.a",
        "a--1--2--b.a", "a.1", "ab.1", "abc.1", "a1.1", "a-1.1", "0.a", "01.a", "012.a", "1a.a", "1-a.a", "a.b.c.d.e", "aa.bb.cc.dd.ee",
        "1.2.3.4.5", "11.22.33.44.55", &"a".repeat(253),
    ];
    for name in good {
        assert!(is_dns1123_subdomain(name).is_empty(), "{name} should be a subdomain");
    }
    let bad = [
        "", "A", "ABC", "aBc", "A1", "A-1", "1-A", "-", "a-", "-a", "1-", "-1", "_", "a_", "_a", "a_b", "1_", "_1", "1_2", ".", "a.", ".a",
        "a..b", "1.", ".1", "1..2", " ", "a ", " a", "a b", "1 ", " 1", "1 2", "A.a", "aB.a", "ab.A", "A1.a", "a1.A", "A.1", "aB.1", "A1.1",
        "1A.1", "0.A", "01.A", "012.A", "1A.a", "1a.A", "A.B.C.D.E", "AA.BB.CC.DD.EE", "a.B.c.d.e", "aa.bB.cc.dd.ee", "a@b", "a,b",
        "a;b", "a:b", "a%b", "a?b", "a$b", &"a".repeat(254),
    ];
    for name in bad {
        assert!(!is_dns1123_subdomain(name).is_empty(), "{name:?} should not be a subdomain");
    }
    assert_eq!(
        is_dns1123_subdomain("Foo_"),
        vec!["a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]
    );
    assert_eq!(is_dns1123_subdomain(&"a".repeat(254)), vec!["must be no more than 253 characters"]);
}

#[test]
fn dns1035_labels() {
    for name in ["a", "ab", "abc", "a1", "a-1", "a--1--2--b", &"a".repeat(63)] {
        assert!(is_dns1035_label(name).is_empty(), "{name}");
    }
    for name in ["0", "01", "012", "1a", "1-a", "1--a--b--2", "", "A", "-", "a-", "a_b", "a.b", &"a".repeat(64)] {
        assert!(!is_dns1035_label(name).is_empty(), "{name:?}");
    }
    assert_eq!(
        is_dns1035_label("1web"),
        vec!["a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]
    );
}

#[test]
fn qualified_names() {
    let long_prefix = format!("{}/{}", "a".repeat(253), "a".repeat(63));
    let good = [
        "simple", "now-with-dashes", "1-starts-with-num", "1234", "simple/simple", "now-with-dashes/simple", "now-with-dashes/now-with-dashes",
        "now.with.dots/simple", "now-with.dashes-and.dots/simple", "1-num.2-num/3-num", "1234/5678", "1.2.3.4/5678", "Uppercase_Is_OK_123",
        "example.com/Uppercase_Is_OK_123", "requests.storage-foo", &"a".repeat(63), &long_prefix,
    ];
    for name in good {
        assert!(is_qualified_name(name).is_empty(), "{name} should be qualified");
    }
    let bad = [
        "nospecialchars%^=@", "cantendwithadash-", "-cantstartwithadash-", "only/one/slash", "Example.com/abc", "example_com/abc", "example.com/",
        "/simple", &"a".repeat(64), &format!("{}/abc", "a".repeat(254)),
    ];
    for name in bad {
        assert!(!is_qualified_name(name).is_empty(), "{name:?} should not be qualified");
    }
    assert_eq!(is_qualified_name("/simple"), vec!["prefix part must be non-empty"]);
    assert_eq!(
        is_qualified_name("example.com/"),
        vec![
            "name part must be non-empty",
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ]
    );
    assert_eq!(
        is_qualified_name("Example.com/abc"),
        vec!["prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]
    );
    assert_eq!(
        is_qualified_name("only/one/slash"),
        vec!["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    );
    assert_eq!(is_qualified_name(&"a".repeat(64)), vec!["name part must be no more than 63 characters"]);
}

#[test]
fn label_values() {
    for v in ["simple", "now-with-dashes", "1-starts-with-num", "end-with-num-1", "1234", &"a".repeat(63), ""] {
        assert!(is_valid_label_value(v).is_empty(), "{v:?} should be a label value");
    }
    for v in [
        "nospecialchars%^=@", "Tama-nui-te-rā.is_Māori.sun", "\\backslashes\\are\\bad", "-starts-with-dash", "ends-with-dash-", ".starts.with.dot",
        "ends.with.dot.", &"a".repeat(64),
    ] {
        assert!(!is_valid_label_value(v).is_empty(), "{v:?} should not be a label value");
    }
    assert_eq!(
        is_valid_label_value("bad value!"),
        vec!["a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]
    );
}

#[test]
fn quantities_parse_to_their_canonical_form() {
    for (input, canonical) in [
        ("100m", "100m"),
        ("1", "1"),
        ("1.5", "1500m"),
        ("0.5", "500m"),
        (".5", "500m"),
        ("5.", "5"),
        ("128Mi", "128Mi"),
        ("1G", "1G"),
        ("1e3", "1e3"),
        ("1E3", "1e3"),
        ("1e-3", "1e-3"),
        ("1.5Gi", "1536Mi"),
        ("1024Ki", "1Mi"),
        ("1000m", "1"),
        ("2000", "2k"),
        ("1500", "1500"),
        ("1024", "1024"),
        ("0", "0"),
        ("-1", "-1"),
        ("+5", "5"),
        ("1n", "1n"),
        ("0.0000000001", "1n"),
        ("1E", "1E"),
        ("1Ki", "1Ki"),
        ("0.5Ki", "512"),
        ("129e6", "129e6"),
        ("12345678901", "12345678901"),
    ] {
        let q = Quantity::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(q.to_string(), canonical, "{input}");
    }
}

#[test]
fn malformed_quantities_are_rejected_with_the_kubernetes_error() {
    let regex_err = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
    for input in ["", "1K", "abc", "1.2.3", "1Mb", "--1", "1 Gi", "1Gii", "1e", "1e3.5"] {
        assert_eq!(Quantity::parse(input).unwrap_err(), regex_err, "{input:?}");
    }
}

#[test]
fn quantities_compare_exactly() {
    let q = |s: &str| Quantity::parse(s).unwrap();
    assert!(q("1Gi") > q("1G"));
    assert_eq!(q("100m"), q("0.1"));
    assert_eq!(q("1"), q("1000m"));
    assert_eq!(q("1k"), q("1e3"));
    assert!(q("500Mi") < q("1Gi"));
    assert!(q("-1") < q("0"));
    assert!(q("1n") > q("0"));
    assert!(q("1Ei") > q("1P"));
    assert!(!q("1.5").is_integer() && q("3").is_integer());
}
