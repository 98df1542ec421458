//! `POST /admin/imports`: staff upload a CSV file into the import folder (the only folder
//! `import_catalog` reads), then land on the run form with its name filled in.

use std::{
    fs::File,
    io::Write,
    path::{Path, PathBuf},
};

use actix_multipart::{Field, Multipart};
use actix_session::Session;
use actix_web::{HttpResponse, web};
use futures_util::{StreamExt, TryStreamExt};

use crate::web::{
    AppState,
    auth::Staff,
    csrf,
    error::{WebError, see_other},
    flash,
};

/// A name to save an uploaded file under: letters, digits, `.`, `-`, `_`, ending in `.csv`,
/// not hidden; anything else is replaced, so no name can leave the folder.
fn safe_file_name(uploaded: Option<&str>) -> String {
    let base = uploaded
        .and_then(|name| Path::new(name).file_name())
        .and_then(|name| name.to_str())
        .unwrap_or("upload.csv");
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    name = name.trim_start_matches('.').to_owned();
    if !name.to_ascii_lowercase().ends_with(".csv") {
        name.push_str(".csv");
    }
    if name == ".csv" {
        name = "upload.csv".to_owned();
    }
    name
}

/// Reads a small text field (the CSRF token, the program's name).
async fn small_text(field: &mut Field) -> Result<String, WebError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(|err| WebError::BadRequest(err.to_string()))?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() > 200 {
            return Err(WebError::BadRequest("A form field is too long.".into()));
        }
    }
    String::from_utf8(bytes).map_err(|_| WebError::BadRequest("A form field is not text.".into()))
}

/// File work on the blocking pool, never on a web worker.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, WebError> {
    web::block(work)
        .await
        .map_err(WebError::internal)?
        .map_err(WebError::internal)
}

/// Streams the file to a temporary name in the folder, then renames it into place: a
/// half-uploaded or oversized file is never seen under its name.
async fn save(
    field: &mut Field,
    folder: &Path,
    name: &str,
    max_bytes: u64,
) -> Result<u64, WebError> {
    let partial = folder.join(format!(".{name}.{}.part", uuid::Uuid::new_v4().simple()));
    let (dir, target) = (folder.to_owned(), partial.clone());
    let mut file = blocking(move || {
        std::fs::create_dir_all(&dir)?;
        File::create(&target)
    })
    .await?;
    let written = async {
        let mut size = 0u64;
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|err| WebError::BadRequest(err.to_string()))?;
            size += chunk.len() as u64;
            if size > max_bytes {
                return Err(WebError::BadRequest(format!(
                    "The file is larger than the limit of {} MB; nothing was saved.",
                    max_bytes / (1024 * 1024)
                )));
            }
            file = blocking(move || file.write_all(&chunk).map(|()| file)).await?;
        }
        let (from, to) = (partial.clone(), folder.join(name));
        blocking(move || {
            file.sync_all()?;
            std::fs::rename(&from, &to)
        })
        .await?;
        Ok(size)
    }
    .await;
    if written.is_err() {
        let partial = partial.clone();
        let _ = web::block(move || std::fs::remove_file(partial)).await;
    }
    written
}

/// `POST /admin/imports`, multipart: `csrf_token` first, then `program` and `file`.
pub async fn upload(
    state: web::Data<AppState>,
    _staff: Staff,
    session: Session,
    mut form: Multipart,
) -> Result<HttpResponse, WebError> {
    let folder: PathBuf = state.programs.import_dir.clone();
    let mut token_checked = false;
    let mut program = "import_catalog".to_owned();
    let mut saved = None;
    while let Some(mut field) = form
        .try_next()
        .await
        .map_err(|err| WebError::BadRequest(err.to_string()))?
    {
        match field.name() {
            Some("csrf_token") => {
                csrf::verify(&session, &small_text(&mut field).await?)?;
                token_checked = true;
            }
            // Nothing is read, let alone written, before the token is checked.
            _ if !token_checked => return Err(WebError::CsrfRejected),
            Some("program") => {
                let name = small_text(&mut field).await?;
                if name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    && !name.is_empty()
                {
                    program = name;
                }
            }
            Some("file") => {
                let name =
                    safe_file_name(field.content_disposition().and_then(|d| d.get_filename()));
                let size =
                    save(&mut field, &folder, &name, state.programs.import_max_bytes).await?;
                saved = Some((name, size));
            }
            _ => while field.next().await.is_some() {},
        }
    }
    let Some((name, size)) = saved else {
        return Err(WebError::BadRequest("Choose a CSV file to upload.".into()));
    };
    flash::success(
        &session,
        format!("Uploaded {name} ({size} bytes) to the import folder. Run the import when ready."),
    );
    let query = serde_urlencoded::to_string([("param_path", name.as_str())]).unwrap_or_default();
    Ok(see_other(&format!("/admin/programs/{program}/run?{query}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploaded_names_stay_in_the_folder() {
        assert_eq!(safe_file_name(Some("books.csv")), "books.csv");
        assert_eq!(safe_file_name(Some("../../etc/passwd")), "passwd.csv");
        assert_eq!(safe_file_name(Some("..")), "upload.csv");
        assert_eq!(safe_file_name(Some(".hidden.csv")), "hidden.csv");
        assert_eq!(safe_file_name(Some("my books (2).CSV")), "my_books__2_.CSV");
        assert_eq!(safe_file_name(None), "upload.csv");
    }
}
