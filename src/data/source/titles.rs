//! Display titles of items: an `item_id,title` CSV beside a snapshot.
//!
//! Must not import: the sources (they import it), anything above `src/data`.

use std::collections::HashMap;
use std::path::Path;

use super::error::SourceError;

/// Reads the titles file at `path`.
pub(super) fn read_titles(path: &Path) -> Result<HashMap<String, String>, SourceError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SourceError::Titles {
        path: name.clone(),
        line: 0,
        reason: e.to_string(),
    })?;
    parse_titles(&text, &name)
}

/// `item_id,title` lines, header optional; the title is everything after the first comma.
/// `name` is how errors name the text.
pub fn parse_titles(text: &str, name: &str) -> Result<HashMap<String, String>, SourceError> {
    let mut titles = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || (i == 0 && line.starts_with("item_id,")) {
            continue;
        }
        let Some((id, title)) = line.split_once(',') else {
            return Err(SourceError::Titles {
                path: name.to_owned(),
                line: i + 1,
                reason: "expected item_id,title".into(),
            });
        };
        titles.insert(id.trim().to_owned(), title.trim().to_owned());
    }
    Ok(titles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_parse_with_or_without_header() {
        let t = parse_titles("item_id,title\nm1,The Harbor, Part 2\n\nm2,X\n", "t").unwrap();
        assert_eq!(t["m1"], "The Harbor, Part 2");
        assert_eq!(t.len(), 2);
        assert!(parse_titles("m1 no comma\n", "t").is_err());
    }
}
