//! SOAP 1.2 envelopes out, a small element tree in: the only XML code of the ONVIF client.
//!
//! Messages are written with quick-xml's writer, so every value that comes from a person or a
//! device (a user name, a profile token) is escaped by the library, never pasted into text.
//! The WS-Security header is the UsernameToken of the OASIS UsernameToken Profile 1.0 with a
//! password digest: `Base64(SHA-1(nonce + created + password))`, where `created` is the device's
//! time as Heldar computed it (see `super::Session`), so the password itself never travels.
//!
//! Answers are read with quick-xml's reader into an [`Element`] tree matched by local name
//! (prefixes differ from maker to maker; namespaces carry no meaning Heldar needs). The reader
//! refuses what an answer has no business holding: a DOCTYPE (the only place an entity can be
//! declared, so "billion laughs" never starts), an entity other than XML's five, nesting deeper
//! than [`MAX_DEPTH`] or more than [`MAX_ELEMENTS`] elements. The size cap is the caller's
//! (`super::MAX_RESPONSE_BYTES`, applied while the body streams in).

use base64::Engine as _;
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::{Reader, Writer};
use sha1::{Digest, Sha1};

pub const NS_SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const NS_WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
pub const NS_WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const PASSWORD_DIGEST: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest";
const BASE64_BINARY: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";
pub const NS_DEVICE: &str = "http://www.onvif.org/ver10/device/wsdl";
pub const NS_MEDIA: &str = "http://www.onvif.org/ver10/media/wsdl";
pub const NS_SCHEMA: &str = "http://www.onvif.org/ver10/schema";

/// Deepest element nesting read from a device (ONVIF answers nest about ten deep).
pub const MAX_DEPTH: usize = 64;
/// Most elements read from one answer (a camera's GetProfiles is a few hundred).
pub const MAX_ELEMENTS: usize = 50_000;

/// The sentence for an answer that declares entities.
pub const ENTITIES_REFUSED: &str = "the device's XML declares entities; refused";

/// What goes into a WS-Security UsernameToken.
#[derive(Clone)]
pub struct UsernameToken<'a> {
    pub username: &'a str,
    pub password: &'a str,
    /// Random bytes, sent Base64-encoded.
    pub nonce: [u8; 16],
    /// `xsd:dateTime` in UTC, the device's clock (`2026-01-02T03:04:05Z`).
    pub created: String,
}

impl std::fmt::Debug for UsernameToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsernameToken")
            .field("username", &self.username)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// `Base64(SHA-1(nonce + created + password))` (UsernameToken Profile 1.0, §3.1).
pub fn password_digest(nonce: &[u8], created: &str, password: &str) -> String {
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(created.as_bytes());
    h.update(password.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// A body's content: writes the operation element (and its children) with the writer.
pub type BodyWriter<'a> = &'a (dyn Fn(&mut Writer<Vec<u8>>) -> std::io::Result<()> + Sync);

/// A SOAP 1.2 envelope with an optional UsernameToken header around `body`.
pub fn envelope(token: Option<&UsernameToken<'_>>, body: BodyWriter<'_>) -> Vec<u8> {
    let mut w = Writer::new(Vec::with_capacity(1024));
    // Writing into a Vec cannot fail; the io::Result is the writer's general signature.
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let _ = w
        .create_element("s:Envelope")
        .with_attribute(("xmlns:s", NS_SOAP))
        .write_inner_content(|w| {
            if let Some(t) = token {
                w.create_element("s:Header").write_inner_content(|w| {
                    write_security(w, t)?;
                    Ok(())
                })?;
            }
            w.create_element("s:Body")
                .write_inner_content(|w| body(w))?;
            Ok(())
        });
    w.into_inner()
}

fn write_security(w: &mut Writer<Vec<u8>>, t: &UsernameToken<'_>) -> std::io::Result<()> {
    let digest = password_digest(&t.nonce, &t.created, t.password);
    let nonce = base64::engine::general_purpose::STANDARD.encode(t.nonce);
    w.create_element("wsse:Security")
        .with_attribute(("xmlns:wsse", NS_WSSE))
        .with_attribute(("xmlns:wsu", NS_WSU))
        .with_attribute(("s:mustUnderstand", "1"))
        .write_inner_content(|w| {
            w.create_element("wsse:UsernameToken")
                .write_inner_content(|w| {
                    w.create_element("wsse:Username")
                        .write_text_content(BytesText::new(t.username))?;
                    w.create_element("wsse:Password")
                        .with_attribute(("Type", PASSWORD_DIGEST))
                        .write_text_content(BytesText::new(&digest))?;
                    w.create_element("wsse:Nonce")
                        .with_attribute(("EncodingType", BASE64_BINARY))
                        .write_text_content(BytesText::new(&nonce))?;
                    w.create_element("wsu:Created")
                        .write_text_content(BytesText::new(&t.created))?;
                    Ok(())
                })?;
            Ok(())
        })?;
    Ok(())
}

/// Write `<{prefix}:{name} xmlns:{prefix}="{ns}">` with `inner` inside.
pub fn operation(
    w: &mut Writer<Vec<u8>>,
    prefix: &str,
    ns: &str,
    name: &str,
    inner: impl FnOnce(&mut Writer<Vec<u8>>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tag = format!("{prefix}:{name}");
    let xmlns = format!("xmlns:{prefix}");
    w.create_element(tag.as_str())
        .with_attribute((xmlns.as_str(), ns))
        .write_inner_content(inner)?;
    Ok(())
}

/// Write `<{tag}>{text}</{tag}>` (text escaped by the writer).
pub fn text_element(w: &mut Writer<Vec<u8>>, tag: &str, text: &str) -> std::io::Result<()> {
    w.create_element(tag)
        .write_text_content(BytesText::new(text))?;
    Ok(())
}

/// Why an answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// A DOCTYPE or an undeclared entity: refused, never expanded.
    #[error("{ENTITIES_REFUSED}")]
    Entities,
    /// Not well-formed, or beyond the limits.
    #[error("{0}")]
    Malformed(String),
}

/// One element of an answer: local name, attributes by local name, children, and its text
/// (the concatenated character data directly inside it, trimmed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The children named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Follow a path of child names.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        names.iter().try_fold(self, |e, n| e.child(n))
    }

    /// The text at a path of child names, if present and not empty.
    pub fn text_at(&self, names: &[&str]) -> Option<&str> {
        self.path(names)
            .map(|e| e.text.as_str())
            .filter(|t| !t.is_empty())
    }

    /// The first element named `name` at any depth (this one included), depth first.
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }

    /// An attribute by local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn local(qname: &[u8]) -> String {
    let local = match qname.iter().rposition(|&b| b == b':') {
        Some(i) => &qname[i + 1..],
        None => qname,
    };
    String::from_utf8_lossy(local).into_owned()
}

fn malformed(e: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed(crate::models::truncate(&e.to_string(), 200))
}

/// The five entities XML predefines; anything else would need a declaration.
fn predefined(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => return None,
    })
}

/// Read a whole answer into its root element (see the module docs for what is refused).
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    let open = |e: &quick_xml::events::BytesStart<'_>| -> Result<Element, XmlError> {
        let mut el = Element {
            name: local(e.name().as_ref()),
            ..Element::default()
        };
        for a in e.attributes() {
            let a = a.map_err(malformed)?;
            let key = a.key.as_ref();
            if key == b"xmlns" || key.starts_with(b"xmlns:") {
                continue;
            }
            let v = a.unescape_value().map_err(|e| match e {
                quick_xml::Error::Escape(_) => XmlError::Entities,
                other => malformed(other),
            })?;
            el.attrs.push((local(key), v.into_owned()));
        }
        Ok(el)
    };
    loop {
        let ev = reader.read_event().map_err(malformed)?;
        match ev {
            Event::DocType(_) => return Err(XmlError::Entities),
            Event::Start(e) => {
                count += 1;
                if stack.len() >= MAX_DEPTH || count > MAX_ELEMENTS {
                    return Err(XmlError::Malformed(format!(
                        "more than {MAX_DEPTH} levels deep or {MAX_ELEMENTS} elements"
                    )));
                }
                stack.push(open(&e)?);
            }
            Event::Empty(e) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::Malformed(format!(
                        "more than {MAX_ELEMENTS} elements"
                    )));
                }
                let el = open(&e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let mut el = stack
                    .pop()
                    .ok_or_else(|| XmlError::Malformed("an end tag without a start".into()))?;
                el.text = el.text.trim().to_string();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.decode().map_err(malformed)?);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.decode().map_err(malformed)?);
                }
            }
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(malformed)?
                } else {
                    predefined(&r.decode().map_err(malformed)?)
                };
                let Some(c) = c else {
                    return Err(XmlError::Entities);
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push(c);
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
        if root.is_some() && stack.is_empty() {
            // Whatever follows the root element is ignored, except a DOCTYPE (checked above
            // only until here, and a DOCTYPE after the root is not well-formed anyway).
            break;
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed(
            "the document ends inside an element".into(),
        ));
    }
    root.ok_or_else(|| XmlError::Malformed("no element in the answer".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_matches_the_profiles_formula() {
        // From the shell: printf '0123456789abcdef2026-01-02T03:04:05Zsecret' |
        //   openssl sha1 -binary | base64
        let d = password_digest(b"0123456789abcdef", "2026-01-02T03:04:05Z", "secret");
        assert_eq!(d, "wjpInr7UL0thZOXWecrqoApQnDY=");
    }

    #[test]
    fn values_are_escaped_by_the_writer_and_the_password_never_written() {
        let t = UsernameToken {
            username: "ad<min>&\"",
            password: "pa<ss",
            nonce: [7; 16],
            created: "2026-01-02T03:04:05Z".into(),
        };
        let xml = envelope(Some(&t), &|w| {
            operation(w, "tds", NS_DEVICE, "GetDeviceInformation", |_| Ok(()))
        });
        let s = String::from_utf8(xml.clone()).unwrap();
        assert!(s.contains("ad&lt;min&gt;&amp;"), "{s}");
        assert!(!s.contains("pa<ss") && !s.contains("pa&lt;ss"), "{s}");
        let root = parse(&xml).unwrap();
        assert_eq!(
            root.find("Username").unwrap().text,
            "ad<min>&\"",
            "round trip"
        );
        assert!(root.find("GetDeviceInformation").is_some());
    }

    #[test]
    fn entities_are_refused_and_predefined_ones_read() {
        let laughs = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><a>&lol2;</a>"#;
        assert_eq!(parse(laughs), Err(XmlError::Entities));
        assert_eq!(parse(b"<a>&ext;</a>"), Err(XmlError::Entities));
        assert_eq!(parse(b"<a b=\"&ext;\"/>"), Err(XmlError::Entities));
        let ok = parse(b"<p:a xmlns:p='x'><p:b k='1 &amp; 2'>x &lt; y &#65;</p:b></p:a>").unwrap();
        assert_eq!(ok.child("b").unwrap().text, "x < y A");
        assert_eq!(ok.child("b").unwrap().attr("k"), Some("1 & 2"));
        assert!(matches!(parse(b"<a><b></a>"), Err(XmlError::Malformed(_))));
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(matches!(
            parse(deep.as_bytes()),
            Err(XmlError::Malformed(_))
        ));
    }
}
