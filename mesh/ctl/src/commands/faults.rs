//! `meshctl fault add|list|clear`: fault leases through the control plane.

use serde_json::Value;

use super::get::fault_table;
use super::path_name;
use super::render::{fault_effect, fault_match, remaining, scalar};
use crate::CtlError;
use crate::cli::FaultAddArgs;
use crate::control::{Control, ControlError};
use crate::fault::FaultArgs;

pub(super) async fn add(control: &Control, a: &FaultAddArgs) -> Result<u8, CtlError> {
    let request = FaultArgs {
        service: a.service.clone(),
        subset: a.subset.clone(),
        delay: a.delay.clone(),
        abort: a.abort.clone(),
        percent: a.percent.clone(),
        headers: a.headers.clone(),
        ttl: a.ttl.clone(),
    }
    .to_request()?;
    let answer = control.post_json("api/v1/faults", &request).await?;
    // The answer may echo only part of the fault: fill in from the request.
    let mut shown = request.clone();
    if let (Value::Object(shown), Value::Object(answer)) = (&mut shown, &answer) {
        for (k, v) in answer {
            shown.insert(k.clone(), v.clone());
        }
    }
    let target = match a.subset.as_deref() {
        Some(s) => format!("{} (subset {s})", a.service),
        None => a.service.clone(),
    };
    let for_whom = match fault_match(&shown).as_str() {
        "*" => "all requests".to_owned(),
        m => format!("requests with {m}"),
    };
    println!(
        "fault {} added: {} on {target} for {for_whom}; expires in {}",
        shown.get("id").map_or_else(|| "?".to_owned(), scalar),
        fault_effect(&shown),
        if shown.get("remaining_ms").is_some() || shown.get("expires_at_ms").is_some() {
            remaining(&shown)
        } else {
            a.ttl.clone()
        }
    );
    Ok(0)
}

pub(super) async fn list(control: &Control) -> Result<u8, CtlError> {
    let answer = control.get("api/v1/faults", &[]).await?;
    let rows = answer.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        eprintln!("No faults in force.");
    } else {
        print!("{}", fault_table(&rows).render());
    }
    Ok(0)
}

pub(super) async fn clear(control: &Control, id: Option<&str>) -> Result<u8, CtlError> {
    match id {
        Some(id) => {
            let id = path_name("fault id", id)?;
            match control.delete(&format!("api/v1/faults/{id}")).await {
                Ok(_) => println!("fault {id} deleted"),
                Err(ControlError::Api { status: 404, .. }) => {
                    return Err(CtlError::Failed(format!(
                        "no fault {id} (it may have expired); `meshctl fault list` shows those in force"
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => {
            let answer = control.delete("api/v1/faults").await?;
            let ids: Vec<String> = answer
                .get("deleted")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(scalar).collect())
                .unwrap_or_default();
            if ids.is_empty() {
                println!("no faults to delete");
            } else {
                println!("deleted {} fault(s): {}", ids.len(), ids.join(", "));
            }
        }
    }
    Ok(0)
}
