//! Differences between two JSON values, path by path (`a.b[2].c`): the TUI's state diff and
//! `verify`'s stored-versus-rebuilt summary both read them from here.

use serde_json::Value;

/// One difference.
#[derive(Debug, Clone, PartialEq)]
pub enum Change<'a> {
    Added {
        path: String,
        new: &'a Value,
    },
    Removed {
        path: String,
        old: &'a Value,
    },
    Changed {
        path: String,
        old: &'a Value,
        new: &'a Value,
    },
}

impl Change<'_> {
    pub fn path(&self) -> &str {
        match self {
            Change::Added { path, .. }
            | Change::Removed { path, .. }
            | Change::Changed { path, .. } => {
                if path.is_empty() {
                    "(value)"
                } else {
                    path
                }
            }
        }
    }
}

/// What changed from `old` to `new`, in path order. Objects are compared key by key and
/// arrays index by index; numbers are equal when their values are (`1` and `1.0`).
pub fn diff<'a>(old: &'a Value, new: &'a Value) -> Vec<Change<'a>> {
    let mut out = Vec::new();
    walk(String::new(), old, new, &mut out);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn walk<'a>(path: String, old: &'a Value, new: &'a Value, out: &mut Vec<Change<'a>>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = join(&path, k);
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => walk(p, x, y, out),
                    (None, Some(y)) => out.push(Change::Added { path: p, new: y }),
                    (Some(x), None) => out.push(Change::Removed { path: p, old: x }),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let p = format!("{path}[{i}]");
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => walk(p, x, y, out),
                    (None, Some(y)) => out.push(Change::Added { path: p, new: y }),
                    (Some(x), None) => out.push(Change::Removed { path: p, old: x }),
                    (None, None) => {}
                }
            }
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => {}
        _ if old == new => {}
        _ => out.push(Change::Changed { path, old, new }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_of_what_changed() {
        let old = json!({"cart": {"items": [1, 2], "total": 10}, "name": "a", "gone": true});
        let new = json!({"cart": {"items": [1, 3, 4], "total": 10.0}, "name": "b", "new": null});
        let d = diff(&old, &new);
        let paths: Vec<&str> = d.iter().map(Change::path).collect();
        assert_eq!(
            paths,
            ["cart.items[1]", "cart.items[2]", "gone", "name", "new"]
        );
        assert!(matches!(d[2], Change::Removed { .. }));
        assert!(matches!(d[4], Change::Added { .. }));
        assert!(diff(&json!(1), &json!(1.0)).is_empty());
        assert_eq!(diff(&json!(1), &json!(2))[0].path(), "(value)");
    }
}
