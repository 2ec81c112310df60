//! Kubernetes' `$(VAR)` expansion in command, args and env values: `$(NAME)` becomes the
//! variable's value when it is defined and stays as written when it is not; `$$` escapes a `$`.

/// Expands `s` with `lookup`.
pub fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                b'(' => {
                    if let Some(end) = s[i + 2..].find(')') {
                        let name = &s[i + 2..i + 2 + end];
                        match lookup(name) {
                            Some(v) => out.push_str(&v),
                            None => out.push_str(&s[i..i + 3 + end]),
                        }
                        i += 3 + end;
                        continue;
                    }
                }
                _ => {}
            }
        }
        let ch = s[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        let vars = |n: &str| match n {
            "A" => Some("apple".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        for (input, want) in [
            ("plain", "plain"),
            ("$(A)", "apple"),
            ("x-$(A)-y", "x-apple-y"),
            ("$(MISSING)", "$(MISSING)"),
            ("$$(A)", "$(A)"),
            ("$$", "$"),
            ("$(EMPTY)z", "z"),
            ("$(A", "$(A"),
            ("$", "$"),
            ("a$b", "a$b"),
            ("ünï$(A)", "ünïapple"),
        ] {
            assert_eq!(expand(input, &vars), want, "{input}");
        }
    }
}
