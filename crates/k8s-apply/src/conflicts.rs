//! Fields of an object owned by other field managers (server-side apply's conflicts): found
//! when planning or applying CRDs, named in errors and tables.

use serde::Serialize;

/// Fields owned by another field manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldConflict {
    /// The field manager that owns them (`helm`, `kubectl-client-side-apply`, ...).
    pub manager: String,
    /// The fields, as the server names them (`.spec.versions`).
    pub fields: Vec<String>,
}

/// Groups `(manager, field)` pairs by manager, keeping first-seen order.
pub fn group_conflicts(pairs: Vec<(String, String)>) -> Vec<FieldConflict> {
    let mut grouped: Vec<FieldConflict> = Vec::new();
    for (manager, field) in pairs {
        match grouped.iter_mut().find(|c| c.manager == manager) {
            Some(existing) => {
                if !existing.fields.contains(&field) {
                    existing.fields.push(field);
                }
            }
            None => grouped.push(FieldConflict {
                manager,
                fields: vec![field],
            }),
        }
    }
    grouped
}

/// One line for people: `helm (.spec.versions, .spec.names); kubectl-edit (.spec.scope)`.
pub fn describe_conflicts(conflicts: &[FieldConflict]) -> String {
    conflicts
        .iter()
        .map(|c| format!("{} ({})", c.manager, c.fields.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}
