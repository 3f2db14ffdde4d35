//! The command line containerd gives a shim, in Go's `flag` style: `-name value`,
//! `-name=value`, `--name value`, booleans alone, then the action.

/// What the shim was told.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub namespace: String,
    pub id: String,
    /// containerd's grpc address (part of the socket name, as runc's shim does).
    pub address: String,
    pub publish_binary: String,
    pub bundle: Option<String>,
    pub debug: bool,
    pub version: bool,
    /// `start`, `delete`, or none (serve).
    pub action: Option<String>,
}

impl Flags {
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Flags, String> {
        let mut f = Flags::default();
        while let Some(a) = args.next() {
            if !a.starts_with('-') {
                if f.action.replace(a.clone()).is_some() {
                    return Err(format!("more than one action: {a:?}"));
                }
                continue;
            }
            let name = a.trim_start_matches('-');
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (name, None),
            };
            match name {
                "debug" => f.debug = inline.as_deref() != Some("false"),
                "v" | "version" => f.version = true,
                "namespace" | "id" | "address" | "publish-binary" | "bundle" | "socket" => {
                    let v = match inline {
                        Some(v) => v,
                        None => args
                            .next()
                            .ok_or_else(|| format!("flag needs an argument: -{name}"))?,
                    };
                    match name {
                        "namespace" => f.namespace = v,
                        "id" => f.id = v,
                        "address" => f.address = v,
                        "publish-binary" => f.publish_binary = v,
                        "bundle" => f.bundle = Some(v),
                        // containerd 1.7+ may name a socket; 1.6 hands it over as fd 3.
                        _ => {}
                    }
                }
                _ => return Err(format!("flag provided but not defined: -{name}")),
            }
        }
        if !f.version && f.namespace.is_empty() {
            return Err("shim namespace cannot be empty (-namespace)".into());
        }
        if !f.version && f.id.is_empty() {
            return Err("shim id cannot be empty (-id)".into());
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Flags, String> {
        Flags::parse(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn containerd_16_start_line() {
        let f = parse(&[
            "-namespace",
            "default",
            "-address",
            "/run/containerd/containerd.sock",
            "-publish-binary",
            "/usr/bin/containerd",
            "-id",
            "c1",
            "-debug",
            "start",
        ])
        .unwrap();
        assert_eq!(f.namespace, "default");
        assert_eq!(f.id, "c1");
        assert_eq!(f.address, "/run/containerd/containerd.sock");
        assert!(f.debug);
        assert_eq!(f.action.as_deref(), Some("start"));
    }

    #[test]
    fn equals_form_and_errors() {
        let f = parse(&["--namespace=n", "-id=x", "-bundle", "/b", "delete"]).unwrap();
        assert_eq!((f.namespace.as_str(), f.id.as_str()), ("n", "x"));
        assert_eq!(f.bundle.as_deref(), Some("/b"));
        assert!(parse(&["-namespace", "n", "-id"])
            .unwrap_err()
            .contains("-id"));
        assert!(parse(&["-namespace", "n", "-id", "x", "-bogus"])
            .unwrap_err()
            .contains("bogus"));
        assert!(parse(&["-id", "x"]).unwrap_err().contains("namespace"));
    }
}
