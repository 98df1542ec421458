use super::*;

#[test]
fn long_data_folders_get_a_short_socket_folder() {
    let short = socket_dir_for(Path::new("/tmp/shop"));
    assert_eq!(short, Path::new("/tmp/shop/run"));
    let long_root = PathBuf::from(format!("/tmp/{}", "x".repeat(120)));
    let long = socket_dir_for(&long_root);
    assert!(long.as_os_str().len() <= MAX_SOCKET_DIR_LEN);
    assert_eq!(
        long,
        socket_dir_for(&long_root),
        "stable for the same folder"
    );
}

#[test]
fn conninfo_values_are_quoted() {
    assert_eq!(quote_conninfo("/tmp/it's"), r"'/tmp/it\'s'");
    assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
}
