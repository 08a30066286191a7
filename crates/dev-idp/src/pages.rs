//! The provider's HTML pages: the user picker, the error page and the signed-out page. Every
//! piece of text is escaped; the pages load nothing and run no script.

use super::{DevUser, UserState};

use kit::escape_html as escape;

fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 36rem; margin: 3rem auto; padding: 0 1rem; color: #1f2933; }}
.warning {{ background: #fff4e5; border-left: 4px solid #f0a020; padding: .5rem .75rem; }}
ul.users {{ list-style: none; padding: 0; }}
ul.users li {{ margin: .5rem 0; }}
ul.users a {{ display: block; padding: .75rem 1rem; border: 1px solid #cbd2d9; border-radius: .5rem; text-decoration: none; color: inherit; }}
ul.users a:hover {{ border-color: #3e7bfa; }}
.meta {{ color: #616e7c; font-size: .9rem; }}
</style>
</head>
<body>
<h1>{title}</h1>
{body}
<p class="warning">This is pocketgate's development identity provider: anyone who can reach it can sign in as anyone. It is for demos and tests on this machine only.</p>
</body>
</html>
"#,
        title = escape(title),
    )
}

/// The user picker. `approve_href` gives each user's (not yet escaped) approval link.
pub(super) fn sign_in_page(
    client_id: &str,
    users: &[UserState],
    approve_href: impl Fn(&DevUser) -> String,
) -> String {
    let mut items = String::new();
    for UserState { user, disabled } in users {
        let mut groups = if user.groups.is_empty() {
            "no groups".to_owned()
        } else {
            format!("groups: {}", user.groups.join(", "))
        };
        if *disabled {
            groups.push_str(" · disabled");
        }
        items.push_str(&format!(
            "<li><a href=\"{href}\"><strong>{name}</strong> <span class=\"meta\">({username})</span><br><span class=\"meta\">{email} &middot; {groups}</span></a></li>\n",
            href = escape(&approve_href(user)),
            name = escape(&user.name),
            username = escape(&user.username),
            email = escape(&user.email),
            groups = escape(&groups),
        ));
    }
    layout(
        "Sign in to the development identity provider",
        &format!(
            "<p>The application <strong>{client}</strong> asks you to sign in. Choose a user:</p>\n<ul class=\"users\">\n{items}</ul>",
            client = escape(client_id),
        ),
    )
}

/// An error the user has to see because it cannot be sent back to the application.
pub(super) fn error_page(message: &str) -> String {
    layout(
        "Invalid authorization request",
        &format!(
            "<p>{}</p>\n<p>The application was not contacted.</p>",
            escape(message)
        ),
    )
}

/// The end of a logout that does not go back to the application; `note` says why not.
pub(super) fn signed_out_page(note: &str) -> String {
    layout(
        "You are signed out",
        &format!(
            "<p>You are signed out of the development identity provider.</p>\n<p class=\"meta\">{}</p>",
            escape(note)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;"
        );
    }
}
