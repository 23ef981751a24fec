//! The JSON Schema of the spec (docs/rowsec.schema.json, draft-07), for editors: with
//! yaml-language-server it completes keys, describes them on hover and marks wrong shapes.
//! It checks shape only; `rowsec check` is what says whether a spec is valid.

/// The schema's text, as `rowsec schema` prints it.
pub const JSON_SCHEMA: &str = include_str!("../../docs/rowsec.schema.json");

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::JSON_SCHEMA;

    /// Every `properties` object of the schema, with where it is.
    fn objects<'a>(v: &'a serde_json::Value, at: String, out: &mut Vec<(String, &'a serde_json::Value)>) {
        if let Some(map) = v.as_object() {
            if let Some(props) = map.get("properties").and_then(|p| p.as_object()) {
                for (k, p) in props {
                    out.push((format!("{at}.{k}"), p));
                }
            }
            for (k, child) in map {
                objects(child, format!("{at}/{k}"), out);
            }
        } else if let Some(items) = v.as_array() {
            for (i, child) in items.iter().enumerate() {
                objects(child, format!("{at}[{i}]"), out);
            }
        }
    }

    #[test]
    fn the_top_level_keys_are_the_loaders_and_part_2s() {
        let schema: serde_json::Value = serde_json::from_str(JSON_SCHEMA).unwrap();
        let keys: BTreeSet<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected: BTreeSet<&str> = crate::load::TOP_KEYS.iter().copied().collect();
        // Part 2's `monitoring` and issue 13's `classes`, which this schema describes ahead of
        // the loader.
        expected.extend(["monitoring", "classes"]);
        assert_eq!(keys, expected);
        let required: BTreeSet<&str> =
            schema["required"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
        assert_eq!(required, crate::load::REQUIRED_TOP_KEYS.iter().copied().collect());
    }

    #[test]
    fn every_key_has_a_description_for_hover() {
        let schema: serde_json::Value = serde_json::from_str(JSON_SCHEMA).unwrap();
        let mut props = Vec::new();
        objects(&schema, String::new(), &mut props);
        assert!(props.len() > 40, "{}", props.len());
        for (at, p) in props {
            let described = p.get("description").is_some()
                || p.get("$ref").and_then(|r| r.as_str()).is_some_and(|r| {
                    let name = r.rsplit('/').next().unwrap();
                    schema["definitions"][name].get("description").is_some()
                        || schema["definitions"][name].get("$ref").is_some()
                })
                || p.get("const").is_some();
            assert!(described, "{at} has no description");
        }
    }
}
