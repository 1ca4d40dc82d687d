//! `meshctl fault add|list|clear`: fault leases through the control plane.

use super::get::fault_table;
use super::path_name;
use super::render::{fault_effect, fault_match, remaining};
use crate::CtlError;
use crate::control::ControlClient;
use crate::fault::FaultArgs;

pub(super) async fn add(control: &ControlClient, a: &FaultArgs) -> Result<u8, CtlError> {
    let request = a.to_request()?;
    // The lease as the control plane made it (durations normalised, time left counted).
    let lease = control.add_fault(&request).await?.lease;
    let target = match a.subset.as_deref() {
        Some(s) => format!("{} (subset {s})", a.service),
        None => a.service.clone(),
    };
    let for_whom = match fault_match(&lease).as_str() {
        "*" => "all requests".to_owned(),
        m => format!("requests with {m}"),
    };
    println!(
        "fault {} added: {} on {target} for {for_whom}; expires in {}",
        lease.id,
        fault_effect(&lease),
        remaining(&lease)
    );
    Ok(0)
}

pub(super) async fn list(control: &ControlClient) -> Result<u8, CtlError> {
    let rows = control.faults().await?;
    if rows.is_empty() {
        eprintln!("No faults in force.");
    } else {
        print!("{}", fault_table(&rows).render());
    }
    Ok(0)
}

pub(super) async fn clear(control: &ControlClient, id: Option<&str>) -> Result<u8, CtlError> {
    match id {
        Some(id) => {
            let id = path_name("fault id", id)?;
            match control.remove_fault(id).await {
                Ok(_) => println!("fault {id} deleted"),
                Err(e) if e.is_not_found() => {
                    return Err(CtlError::Failed(format!(
                        "no fault {id} (it may have expired); `meshctl fault list` shows those in force"
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => {
            let ids = control.clear_faults().await?.deleted;
            if ids.is_empty() {
                println!("no faults to delete");
            } else {
                println!("deleted {} fault(s): {}", ids.len(), ids.join(", "));
            }
        }
    }
    Ok(0)
}
