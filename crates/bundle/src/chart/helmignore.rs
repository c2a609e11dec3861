//! `.helmignore` rules, with Helm's semantics (`pkg/ignore`): one glob per line, `#` comments,
//! `!` negation, a trailing `/` matches directories only, a leading `/` anchors at the chart
//! root, a pattern without `/` matches the base name, `**` is rejected. Helm always adds
//! `templates/.?*`.

/// A `.helmignore` rule Helm would refuse too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {rule:?}: {reason}")]
pub struct HelmIgnoreError {
    /// The rule, as written.
    pub rule: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A parsed `.helmignore`.
#[derive(Debug, Clone, Default)]
pub struct HelmIgnore {
    patterns: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    glob: String,
    negate: bool,
    must_dir: bool,
    kind: RuleKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleKind {
    Anchored,
    Structural,
    BaseName,
}

impl HelmIgnore {
    /// The rules Helm applies even without a `.helmignore` file.
    pub fn defaults() -> HelmIgnore {
        let mut r = HelmIgnore::default();
        r.add("templates/.?*").expect("valid default rule");
        r
    }

    /// Parses `.helmignore` text on top of [`defaults`](Self::defaults).
    pub fn parse(text: &str) -> Result<HelmIgnore, HelmIgnoreError> {
        let mut r = HelmIgnore::defaults();
        for line in text.lines() {
            r.add(line)?;
        }
        Ok(r)
    }

    fn add(&mut self, line: &str) -> Result<(), HelmIgnoreError> {
        let mut rule = line.trim();
        if rule.is_empty() || rule.starts_with('#') {
            return Ok(());
        }
        let refuse = |reason| HelmIgnoreError {
            rule: rule.to_string(),
            reason,
        };
        if rule.contains("**") {
            return Err(refuse("double-star (**) syntax is not supported"));
        }
        if glob_match(rule, "abc").is_err() {
            return Err(refuse("bad glob pattern"));
        }
        let negate = rule.starts_with('!');
        if negate {
            rule = &rule[1..];
        }
        let must_dir = rule.ends_with('/');
        if must_dir {
            rule = rule.trim_end_matches('/');
        }
        let (glob, kind) = if let Some(r) = rule.strip_prefix('/') {
            (r, RuleKind::Anchored)
        } else if rule.contains('/') {
            (rule, RuleKind::Structural)
        } else {
            (rule, RuleKind::BaseName)
        };
        self.patterns.push(Rule {
            glob: glob.to_string(),
            negate,
            must_dir,
            kind,
        });
        Ok(())
    }

    /// Whether `path` (relative to the chart root, `/`-separated) is ignored.
    pub fn ignored(&self, path: &str, is_dir: bool) -> bool {
        if path.is_empty() || path == "." || path == "./" {
            return false;
        }
        for p in &self.patterns {
            let matches = || {
                let subject = match p.kind {
                    RuleKind::BaseName => path.rsplit('/').next().unwrap_or(path),
                    _ => path,
                };
                glob_match(&p.glob, subject).unwrap_or(false)
            };
            // Helm's negation: a non-match of a `!` rule ignores the path.
            if p.negate {
                if p.must_dir && !is_dir {
                    return true;
                }
                if !matches() {
                    return true;
                }
                continue;
            }
            if p.must_dir && !is_dir {
                continue;
            }
            if matches() {
                return true;
            }
        }
        false
    }
}

/// Go's `filepath.Match` on `/`-separated names: `*` and `?` never match `/`; `[...]` classes
/// with `^` negation and ranges; `\` escapes. `Err` on a malformed pattern.
pub(crate) fn glob_match(pattern: &str, name: &str) -> Result<bool, ()> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn class(p: &[char], mut i: usize, c: char) -> Result<(bool, usize), ()> {
        // p[i] is just after '['.
        let negate = p.get(i) == Some(&'^');
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        loop {
            let ch = *p.get(i).ok_or(())?;
            if ch == ']' && !first {
                i += 1;
                break;
            }
            first = false;
            let lo = if ch == '\\' {
                i += 1;
                *p.get(i).ok_or(())?
            } else {
                ch
            };
            i += 1;
            let mut hi = lo;
            if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|x| *x != ']') {
                i += 1;
                hi = if p[i] == '\\' {
                    i += 1;
                    *p.get(i).ok_or(())?
                } else {
                    p[i]
                };
                i += 1;
            }
            if lo <= c && c <= hi {
                matched = true;
            }
        }
        Ok((matched != negate, i))
    }
    fn go(p: &[char], n: &[char]) -> Result<bool, ()> {
        let (mut pi, mut ni) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        loop {
            if pi < p.len() {
                match p[pi] {
                    '*' => {
                        star = Some((pi, ni));
                        pi += 1;
                        continue;
                    }
                    '?' if ni < n.len() && n[ni] != '/' => {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                    '[' if ni < n.len() && n[ni] != '/' => {
                        let (ok, next) = class(p, pi + 1, n[ni])?;
                        if ok {
                            pi = next;
                            ni += 1;
                            continue;
                        }
                    }
                    '\\' if pi + 1 < p.len() && ni < n.len() && p[pi + 1] == n[ni] => {
                        pi += 2;
                        ni += 1;
                        continue;
                    }
                    '\\' if pi + 1 >= p.len() => return Err(()),
                    c if c != '*'
                        && c != '?'
                        && c != '['
                        && c != '\\'
                        && ni < n.len()
                        && c == n[ni] =>
                    {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                    _ => {}
                }
            } else if ni == n.len() {
                return Ok(true);
            }
            // Backtrack: let the last `*` swallow one more non-separator character.
            match star {
                Some((sp, sn)) if sn < n.len() && n[sn] != '/' => {
                    star = Some((sp, sn + 1));
                    pi = sp + 1;
                    ni = sn + 1;
                }
                _ => {
                    // Validate the rest of the pattern so malformed classes are reported.
                    validate(&p[pi.min(p.len())..])?;
                    return Ok(false);
                }
            }
        }
    }
    fn validate(p: &[char]) -> Result<(), ()> {
        let mut i = 0;
        while i < p.len() {
            match p[i] {
                '[' => {
                    let (_, next) = class(p, i + 1, '\0')?;
                    i = next;
                }
                '\\' => {
                    if i + 1 >= p.len() {
                        return Err(());
                    }
                    i += 2;
                }
                _ => i += 1,
            }
        }
        Ok(())
    }
    validate(&p)?;
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_table() {
        let rows: &[(&str, &str, bool)] = &[
            ("*.txt", "a.txt", true),
            ("*.txt", "dir/a.txt", false),
            ("a?c", "abc", true),
            ("a?c", "a/c", false),
            ("[a-c]x", "bx", true),
            ("[^a-c]x", "bx", false),
            ("[^a-c]x", "dx", true),
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("\\*", "*", true),
            (".git", ".git", true),
            ("templates/.?*", "templates/.hidden", true),
            ("templates/.?*", "templates/.", false),
        ];
        for (p, n, want) in rows {
            assert_eq!(glob_match(p, n), Ok(*want), "{p} vs {n}");
        }
        assert_eq!(glob_match("[a-", "a"), Err(()));
    }

    #[test]
    fn ignore_table() {
        let ig =
            HelmIgnore::parse("# comment\n.git/\n*.tmp\n/secret.yaml\nci/*.yaml\n*.swp\n").unwrap();
        let rows: &[(&str, bool, bool)] = &[
            (".git", true, true),
            (".git", false, false),
            ("a.tmp", false, true),
            ("templates/a.tmp", false, true),
            ("secret.yaml", false, true),
            ("templates/secret.yaml", false, false),
            ("ci/values.yaml", false, true),
            ("other/ci/values.yaml", false, false),
            ("templates/.hidden", false, true),
            ("templates/deployment.yaml", false, false),
            ("values.yaml", false, false),
        ];
        for (path, dir, want) in rows {
            assert_eq!(ig.ignored(path, *dir), *want, "{path}");
        }
        assert!(
            HelmIgnore::parse("a/**/b")
                .unwrap_err()
                .to_string()
                .contains("double-star")
        );
    }
}
