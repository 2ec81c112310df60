mod netgc_support;

use std::time::Duration;

use controllers::client::{DeleteOptions, res};
use controllers::{Config, serviceaccount};
use netgc_support::{Harness, wait_for};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_service_account_in_every_namespace() {
    let mut h = Harness::new(Config::default());
    let (nss, sas) = (res("", "namespaces"), res("", "serviceaccounts"));
    h.create(nss, None, json!({"metadata": {"name": "existing"}})).await;
    h.create(nss, None, json!({"metadata": {"name": "going"}, "status": {"phase": "Terminating"}})).await;
    h.start(serviceaccount::run);

    wait_for("the SA of a namespace that existed first", Duration::from_secs(5), || h.fake.get(sas, "existing/default")).await;
    h.create(nss, None, json!({"metadata": {"name": "team-a"}})).await;
    let sa = wait_for("the SA of a new namespace", Duration::from_secs(5), || h.fake.get(sas, "team-a/default")).await;
    assert_eq!(sa["metadata"]["name"], "default");
    assert_eq!(sa["metadata"]["namespace"], "team-a");

    let old_uid = sa["metadata"]["uid"].clone();
    h.client.delete(sas, Some("team-a"), "default", DeleteOptions::default()).await.expect("delete");
    let again = wait_for("the SA to be recreated", Duration::from_secs(5), || h.fake.get(sas, "team-a/default")).await;
    assert_ne!(again["metadata"]["uid"], old_uid);

    // Other service accounts are none of its business.
    h.create(sas, Some("team-a"), json!({"metadata": {"name": "builder"}})).await;
    h.client.delete(sas, Some("team-a"), "builder", DeleteOptions::default()).await.expect("delete");

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(h.fake.get(sas, "going/default").is_none(), "no SA in a terminating namespace");
    assert!(h.fake.get(sas, "team-a/builder").is_none());
    assert_eq!(h.fake.objects(sas).len(), 2);
}
