//! Display titles of items, and their other columns: an `item_id,title[,...]` CSV beside a
//! snapshot, read with a real CSV reader (MovieLens' `movies.csv` quotes titles that hold
//! commas: `1,"American President, The (1995)",Comedy|Drama|Romance`). Columns after the title
//! are the item's attributes, named by the header (`genres`), or `column_3`, ... without one.
//!
//! Must not import: the sources (they import it), anything above `src/data`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::SourceError;

/// Titles and attributes by item id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Titles {
    /// Display title by item id.
    pub titles: HashMap<String, String>,
    /// The other columns by item id: column name → value (empty values left out).
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub attributes: HashMap<String, BTreeMap<String, String>>,
}

impl Titles {
    /// The title of item `id`, if the file gives one.
    pub fn title(&self, id: &str) -> Option<&str> {
        self.titles.get(id).map(String::as_str)
    }

    /// The attributes of item `id`, if the file gives any.
    pub fn attributes(&self, id: &str) -> Option<&BTreeMap<String, String>> {
        self.attributes.get(id)
    }

    /// Whether there is a title for `id`.
    pub fn contains_key(&self, id: &str) -> bool {
        self.titles.contains_key(id)
    }
}

/// Reads the titles file at `path`.
pub(super) fn read_titles(path: &Path) -> Result<Titles, SourceError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SourceError::Titles {
        path: name.clone(),
        line: 0,
        reason: e.to_string(),
    })?;
    parse_titles(&text, &name)
}

/// `item_id,title[,...]` records, header optional (a first record whose title column reads
/// `title`); fields may be quoted. `name` is how errors name the text.
pub fn parse_titles(text: &str, name: &str) -> Result<Titles, SourceError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let fail = |line: u64, reason: String| SourceError::Titles {
        path: name.to_owned(),
        line: line as usize,
        reason,
    };
    let mut out = Titles::default();
    let mut names: Vec<String> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            fail(line, e.to_string())
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        if record.iter().all(str::is_empty) {
            continue;
        }
        if i == 0
            && record
                .get(1)
                .is_some_and(|t| t.eq_ignore_ascii_case("title"))
        {
            names = record.iter().skip(2).map(str::to_owned).collect();
            continue;
        }
        let (Some(id), Some(title)) = (record.get(0), record.get(1)) else {
            return Err(fail(line, "expected item_id,title".into()));
        };
        let attributes: BTreeMap<String, String> = (2..record.len())
            .filter(|&c| !record[c].is_empty())
            .map(|c| {
                let key = names.get(c - 2).filter(|n| !n.is_empty());
                let key = key.cloned().unwrap_or_else(|| format!("column_{}", c + 1));
                (key, record[c].to_owned())
            })
            .collect();
        if !attributes.is_empty() {
            out.attributes.insert(id.to_owned(), attributes);
        }
        out.titles.insert(id.to_owned(), title.to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_parse_with_or_without_header() {
        let t = parse_titles("item_id,title\nm1,The Harbor\n\nm2,X\n", "t").unwrap();
        assert_eq!(t.title("m1"), Some("The Harbor"));
        assert_eq!(t.titles.len(), 2);
        assert!(t.attributes.is_empty());
        let err = parse_titles("m1,A\nm2 no comma\n", "t").unwrap_err();
        assert_eq!(err.to_string(), "t:2: expected item_id,title");
    }

    #[test]
    fn quoted_titles_keep_their_commas_and_extra_columns_are_attributes() {
        let movielens = "movieId,title,genres\n\
                         1,Toy Story (1995),Adventure|Animation\n\
                         11,\"American President, The (1995)\",Comedy|Drama|Romance\n\
                         12,\"Dracula: Dead and Loving It (1995)\",\n";
        let t = parse_titles(movielens, "movies.csv").unwrap();
        assert_eq!(t.title("11"), Some("American President, The (1995)"));
        let genres = |id| t.attributes(id).and_then(|a| a.get("genres")).cloned();
        assert_eq!(genres("11").as_deref(), Some("Comedy|Drama|Romance"));
        assert_eq!(genres("12"), None);
        let bare = parse_titles("m1,\"A, B\",x,y\n", "t").unwrap();
        let attrs = bare.attributes("m1").unwrap();
        assert_eq!(bare.title("m1"), Some("A, B"));
        assert_eq!(
            attrs.iter().collect::<Vec<_>>(),
            [
                (&"column_3".into(), &"x".into()),
                (&"column_4".into(), &"y".into())
            ]
        );
    }
}
