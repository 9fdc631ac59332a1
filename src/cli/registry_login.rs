//! `kiln registry login`: what `az acr login` is to ACR. Docker gets credentials for the
//! server's registry, the logged-in token's name and secret, which the registry's token
//! endpoint takes as Basic credentials, so `docker push <host>/app:1` just works.

use clap::Args;
use kiln_worker::server_url;

use super::client::KilnClient;
use super::docker_config::{store_with_helper, CredentialStore, DockerConfig};
use super::{CliError, ServerArgs};
use crate::access::Role;

#[derive(Debug, Args)]
pub struct RegistryLoginArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn login(args: RegistryLoginArgs) -> Result<(), CliError> {
    let client = KilnClient::new(&args.server)?;
    let Some(secret) = args.server.resolve_token()? else {
        return Err(CliError::Input(format!(
            "no token for {}: run `kiln login {}` first, or set KILN_TOKEN",
            client.server(),
            client.server()
        )));
    };
    // The registry checks the username against the token's name.
    let me = client.whoami().await?;
    if me.roles.contains(&Role::Worker) {
        return Err(CliError::Input(format!(
            "token '{}' is a worker token, which the registry does not take: log in with a \
             pull, push, delete or owner token",
            me.name
        )));
    }
    let host = server_url::registry_host(client.server()).map_err(CliError::Input)?;
    let mut config = DockerConfig::load()?;
    let stored_in = match config.store_for(&host) {
        CredentialStore::Helper(helper) => {
            store_with_helper(&helper, config.path(), &host, &me.name, &secret)?;
            format!(
                "docker-credential-{helper} (named in {})",
                config.path().display()
            )
        }
        CredentialStore::File => {
            config.set_auth(&host, &me.name, &secret)?;
            config.save()?;
            config.path().display().to_string()
        }
    };
    eprintln!(
        "Docker credentials for {host} (token '{}') stored in {stored_in}: `docker push {host}/app:1` and `docker pull` use them.",
        me.name
    );
    if client.server().starts_with("http://") && !server_url::is_loopback(&host) {
        eprintln!(
            "Note: {host} is served over plain HTTP; Docker talks plain HTTP only to loopback \
             addresses and to registries in the engine's \"insecure-registries\" (daemon.json)."
        );
    }
    Ok(())
}
