//! What the commands print, in runc's layouts.

use libcontainer::oci_spec::runtime::Spec;
use libcontainer::State;
use serde::Serialize;
use serde_json::Value;

/// Go's text/tabwriter with runc's settings for `list` (minwidth 12, tabwidth 1, padding 3,
/// padchar ' ', no flags): every tab-terminated cell is padded to its column's width, the text
/// after the last tab of a line is printed as is. All rows have the same cells here, so a
/// column's width is the widest cell plus padding, at least 12.
pub fn tabwriter(rows: &[Vec<String>]) -> String {
    const MINWIDTH: usize = 12;
    const PADDING: usize = 3;
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().take(row.len().saturating_sub(1)).enumerate() {
            let w = (cell.chars().count() + PADDING).max(MINWIDTH);
            if i == widths.len() {
                widths.push(w);
            } else {
                widths[i] = widths[i].max(w);
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count();
                out.extend(std::iter::repeat(' ').take(pad));
            }
        }
        out.push('\n');
    }
    out
}

/// `list` as a table: `ID  PID  STATUS  BUNDLE  CREATED  OWNER`.
pub fn list_table(states: &[State]) -> String {
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        .map(String::from)
        .to_vec()];
    for s in states {
        rows.push(vec![
            s.id.clone(),
            s.pid.to_string(),
            s.status.to_string(),
            s.bundle.display().to_string(),
            s.created.clone(),
            s.owner.clone(),
        ]);
    }
    tabwriter(&rows)
}

/// `list --format json`: one line, `null` when there are no containers (runc encodes a nil
/// slice).
pub fn list_json(states: &[State]) -> serde_json::Result<String> {
    if states.is_empty() {
        return Ok("null\n".into());
    }
    Ok(serde_json::to_string(states)? + "\n")
}

/// `list -q`: the ids, one a line.
pub fn list_quiet(states: &[State]) -> String {
    states.iter().map(|s| format!("{}\n", s.id)).collect()
}

/// `state`: indented JSON, like runc's MarshalIndent(…, "", "  ").
pub fn state_json(state: &State) -> serde_json::Result<String> {
    Ok(serde_json::to_string_pretty(state)? + "\n")
}

/// config.json as `spec` writes it: tab-indented like runc's, with stable key order and the
/// capability sets (kept in hash sets by oci-spec) sorted; no trailing newline, as runc.
pub fn spec_json(spec: &Spec) -> serde_json::Result<Vec<u8>> {
    let mut v = serde_json::to_value(spec)?;
    if let Some(caps) = v
        .pointer_mut("/process/capabilities")
        .and_then(Value::as_object_mut)
    {
        for set in caps.values_mut() {
            if let Some(list) = set.as_array_mut() {
                list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    v.serialize(&mut ser)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcontainer::Status;

    fn state(id: &str, pid: i32, status: Status) -> State {
        State {
            oci_version: "1.3.0".into(),
            id: id.into(),
            pid,
            status,
            bundle: format!("/b/{id}").into(),
            rootfs: format!("/b/{id}/rootfs").into(),
            created: "2026-11-23T21:45:12.123456789Z".into(),
            owner: "root".into(),
            annotations: Default::default(),
        }
    }

    #[test]
    fn empty_list_like_runc() {
        // runc 1.1.5, byte for byte.
        assert_eq!(
            list_table(&[]),
            "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
        );
        assert_eq!(list_json(&[]).unwrap(), "null\n");
        assert_eq!(list_quiet(&[]), "");
    }

    #[test]
    fn list_columns_align() {
        let s = [
            state("a-rather-long-container-id", 4242, Status::Running),
            state("b", 0, Status::Stopped),
        ];
        let t = list_table(&s);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        // ID column: 26 chars + 3 padding.
        assert!(
            lines[0].starts_with(&format!("{:29}PID         STATUS", "ID")),
            "{t}"
        );
        assert!(
            lines[1].starts_with(&format!("{:29}4242        running     /b/", s[0].id)),
            "{t}"
        );
        assert!(
            lines[2].ends_with("2026-11-23T21:45:12.123456789Z   root"),
            "{t}"
        );
        let col = |l: &str, w: &str| l.find(w).unwrap();
        assert_eq!(col(lines[0], "BUNDLE"), col(lines[1], "/b/"));
        assert_eq!(col(lines[0], "OWNER"), col(lines[2], "root"));
        assert_eq!(list_quiet(&s), "a-rather-long-container-id\nb\n");
        let v: Value = serde_json::from_str(&list_json(&s).unwrap()).unwrap();
        assert_eq!(v[1]["status"], "stopped");
    }

    #[test]
    fn spec_is_tab_indented_and_sorted() {
        let out =
            String::from_utf8(spec_json(&libcontainer::default_spec(false)).unwrap()).unwrap();
        assert!(out.starts_with("{\n\t\""), "{out}");
        assert!(!out.ends_with('\n'));
        let a = out.find("CAP_AUDIT_WRITE").unwrap();
        let k = out.find("CAP_KILL").unwrap();
        let n = out.find("CAP_NET_BIND_SERVICE").unwrap();
        assert!(a < k && k < n);
    }
}
