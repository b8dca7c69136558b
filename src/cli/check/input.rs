//! Manifests in: paths expanded to files (directories recursively, sorted), each file split into
//! documents (multi-document YAML, JSON, `kind: List`). Parsing is pure; the caller reads one file
//! at a time, so a directory of thousands of manifests never sits in memory at once.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Where one object came from: the file (`-` for stdin), the document in it (from 0), and the
/// item of a `kind: List` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    /// The file as named on the command line or found in a directory, `-` for stdin.
    pub file: String,
    /// Index of the YAML or JSON document in the file, from 0.
    pub document: usize,
    /// Index in a `kind: List` document's `items`, from 0; None when the document is the object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
}

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Standard input, named `-` on the command line.
    Stdin,
    /// A file named on the command line or found in a directory walk.
    File(PathBuf),
}

impl Input {
    /// How messages and reports name the input: its path as given, or `-` for stdin.
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "-".to_string(),
            Input::File(p) => p.display().to_string(),
        }
    }
}

/// An input that could not be read or parsed. Every message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A path on the command line names no file or directory.
    #[error("{path}: no such file or directory: pass manifest files, directories, or - for stdin")]
    Missing {
        /// The path as given.
        path: String,
    },
    /// A file or directory cannot be read (permissions, or a file that is not UTF-8).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or directory, `-` for stdin.
        path: String,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// A document is not valid YAML or JSON; the objects before it in the file are still checked.
    #[error("{file}: document {document}, line {line}, column {column}: {message}: fix the {format} or leave the file out")]
    Parse {
        /// The file, `-` for stdin.
        file: String,
        /// The document that does not parse, from 0.
        document: usize,
        /// 1-based line in the file; 0 when the parser gives no location.
        line: usize,
        /// 1-based column on that line; 0 when the parser gives no location.
        column: usize,
        /// The parser's error.
        message: String,
        /// `YAML` or `JSON`: what the file was parsed as.
        format: &'static str,
    },
    /// An object parsed but could not be run through the webhook (an [`EvalError`]).
    ///
    /// [`EvalError`]: super::eval::EvalError
    #[error("{file}: document {document}: {message}")]
    Object {
        /// The file, `-` for stdin.
        file: String,
        /// The document holding the object, from 0.
        document: usize,
        /// Why it could not be evaluated.
        message: String,
    },
}

/// The files `paths` name: files as given, directories walked recursively for *.yaml, *.yml
/// and *.json (sorted, so output is stable), `-` as stdin.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<Input>, InputError> {
    let mut out = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            out.push(Input::Stdin);
        } else if path.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files)?;
            files.sort();
            out.extend(files.into_iter().map(Input::File));
        } else if path.exists() {
            out.push(Input::File(path.clone()));
        } else {
            return Err(InputError::Missing {
                path: path.display().to_string(),
            });
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let read_err = |source| InputError::Read {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if is_manifest(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Whether a file found in a directory walk is a manifest.
pub fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Reads one input whole (one file at a time is the memory bound).
pub fn read(input: &Input) -> Result<String, InputError> {
    let result = match input {
        Input::Stdin => std::io::read_to_string(std::io::stdin()),
        Input::File(p) => std::fs::read_to_string(p),
    };
    result.map_err(|source| InputError::Read {
        path: input.name(),
        source,
    })
}

/// One object of a file.
#[derive(Debug, Clone)]
pub struct Document {
    /// Where in the input the object was found.
    pub source: SourceRef,
    /// The object, YAML read as JSON.
    pub value: Value,
}

/// Splits a file's text into objects. Empty documents are dropped; a `*List` with `items` gives
/// one object per item. Objects before a parse error are kept, with the error.
pub fn documents(file: &str, text: &str) -> (Vec<Document>, Option<InputError>) {
    let mut out = Vec::new();
    let trimmed = text.trim_start();
    let error = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        json_documents(file, text, &mut out)
    } else {
        yaml_documents(file, text, &mut out)
    };
    (out, error)
}

fn json_documents(file: &str, text: &str, out: &mut Vec<Document>) -> Option<InputError> {
    let stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    for (document, value) in stream.enumerate() {
        match value {
            Ok(v) => push(file, document, v, out),
            Err(e) => {
                return Some(InputError::Parse {
                    file: file.to_string(),
                    document,
                    line: e.line(),
                    column: e.column(),
                    message: e.to_string(),
                    format: "JSON",
                })
            }
        }
    }
    None
}

fn yaml_documents(file: &str, text: &str, out: &mut Vec<Document>) -> Option<InputError> {
    for (document, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        match Value::deserialize(de) {
            Ok(v) => push(file, document, v, out),
            Err(e) => {
                let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
                return Some(InputError::Parse {
                    file: file.to_string(),
                    document,
                    line,
                    column,
                    message: e.to_string(),
                    format: "YAML",
                });
            }
        }
    }
    None
}

fn push(file: &str, document: usize, value: Value, out: &mut Vec<Document>) {
    let source = |item| SourceRef {
        file: file.to_string(),
        document,
        item,
    };
    if value.is_null() {
        return;
    }
    let is_list = value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"));
    match value.get("items").and_then(Value::as_array) {
        Some(items) if is_list => {
            for (i, item) in items.iter().enumerate() {
                out.push(Document {
                    source: source(Some(i)),
                    value: item.clone(),
                });
            }
        }
        _ => out.push(Document {
            source: source(None),
            value,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn multi_document_yaml_and_lists_give_one_object_each() {
        let text = "kind: Pod\nmetadata: {name: a}\n---\n---\nkind: List\nitems:\n- kind: Service\n- kind: Pod\n";
        let (docs, err) = documents("f.yaml", text);
        assert!(err.is_none());
        let kinds: Vec<_> = docs.iter().map(|d| d.value["kind"].clone()).collect();
        assert_eq!(kinds, ["Pod", "Service", "Pod"]);
        assert_eq!(docs[2].source.document, 2);
        assert_eq!(docs[2].source.item, Some(1));
    }

    #[test]
    fn parse_errors_name_the_document_and_line() {
        let text = "kind: Pod\n---\nkind: [unclosed\n";
        let (docs, err) = documents("f.yaml", text);
        assert_eq!(docs.len(), 1);
        let msg = err.unwrap().to_string();
        assert!(msg.starts_with("f.yaml: document 1, line"), "{msg}");
        let (_, err) = documents("f.json", "{\"kind\": }");
        let msg = err.unwrap().to_string();
        assert!(msg.contains("document 0, line 1"), "{msg}");
    }
}
