use super::*;
use kalamdb_commons::{Role, SystemClock, UserId};
use kalamdb_store::StoreOptions;

fn users() -> (tempfile::TempDir, Arc<Authenticator>, Users) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(HotStore::open(dir.path(), StoreOptions::default()).unwrap());
    let auth = Authenticator::new();
    auth.attach_store(store.clone(), Arc::new(SystemClock));
    let users = Users::load(store, Arc::new(SystemClock), auth.clone()).unwrap();
    (dir, auth, users)
}

#[test]
fn root_without_password_only_from_loopback() {
    let (_d, auth, users) = users();
    users.bootstrap_root(None).unwrap();
    assert!(auth.authenticate(&users, "root", "", true).is_ok());
    assert_eq!(
        auth.authenticate(&users, "root", "", false),
        Err(AuthFailure::RootRemoteWithoutPassword)
    );
    users.bootstrap_root(Some("s3cret")).unwrap();
    assert!(auth.authenticate(&users, "root", "s3cret", false).is_ok());
    assert!(auth.authenticate(&users, "root", "", true).is_err());
}

#[test]
fn wrong_passwords_fail_and_cache_follows_password_changes() {
    let (_d, auth, users) = users();
    users
        .create(UserId::new("alice").unwrap(), "pw-one", Role::User, None)
        .unwrap();
    assert!(auth.authenticate(&users, "alice", "pw-one", false).is_ok());
    // The second time comes from the cache.
    assert!(auth
        .authenticate_without_kdf(&users, "alice", "pw-one", false)
        .is_some_and(|r| r.is_ok()));
    assert!(auth.authenticate(&users, "alice", "pw-two", false).is_err());
    users.set_password("alice", "pw-two").unwrap();
    assert!(auth
        .authenticate_without_kdf(&users, "alice", "pw-one", false)
        .is_none());
    assert!(auth.authenticate(&users, "alice", "pw-one", false).is_err());
    assert!(auth.authenticate(&users, "alice", "pw-two", false).is_ok());
    assert!(users.drop_user("alice").unwrap());
    assert!(auth.authenticate(&users, "alice", "pw-two", false).is_err());
    assert!(users
        .create(UserId::new("alice").unwrap(), "pw-three", Role::User, None)
        .is_err());
    assert!(auth.authenticate(&users, "nobody", "x", false).is_err());
}

#[test]
fn the_policy_refuses_short_and_huge_passwords() {
    let (_d, _auth, users) = users();
    for password in ["abc", &"x".repeat(password::MAX_PASSWORD_LEN + 1)] {
        let refused = users.create(UserId::new("bob").unwrap(), password, Role::User, None);
        assert!(refused.is_err(), "{} characters accepted", password.len());
    }
}

#[test]
fn a_password_change_or_drop_ends_the_users_sessions() {
    let (_d, auth, users) = users();
    users
        .create(UserId::new("carol").unwrap(), "pw-one", Role::User, None)
        .unwrap();
    let sessions = auth.sessions().unwrap();
    let first = sessions.create("carol", 60_000_000, false).unwrap();
    let other = sessions.create("root", 60_000_000, false).unwrap();
    users.set_password("carol", "pw-two").unwrap();
    assert!(sessions.get(&first.id).unwrap().is_none());
    assert!(sessions.get(&other.id).unwrap().is_some());
    let second = sessions.create("carol", 60_000_000, false).unwrap();
    users.drop_user("carol").unwrap();
    assert!(sessions.get(&second.id).unwrap().is_none());
}
