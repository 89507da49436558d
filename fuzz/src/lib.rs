//! What the fuzz targets share.

use serde::de::DeserializeOwned;

/// `data` as a JSON body of type `T`, read the way the server reads one (naming the path of
/// a field that is wrong), `None` when it is not one.
pub fn parse<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    let deserializer = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(deserializer)
        .map_err(|error| error.path().to_string() + &error.into_inner().to_string())
        .ok()
}
