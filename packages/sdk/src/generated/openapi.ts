/**
 * The Conduit service's REST API as TypeScript types, generated from its
 * /openapi.json by openapi-typescript. Do not edit: run `npm run gen:api`.
 */

export interface paths {
  "/healthz": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Liveness (no token). */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path?: never;
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": {
              /** @enum {string} */
              status: "ok";
              version: string;
            };
          };
        };
      };
    };
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/openapi.json": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** This OpenAPI 3 document (no token). */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path?: never;
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": {
              [key: string]: unknown;
            };
          };
        };
      };
    };
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/v1/admin/identities": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Every identity, by username, with when each of its API tokens expires (admin only). */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path?: never;
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "4XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "5XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": {
              email?: string;
              /** Format: uuid */
              id: string;
              identity_provider?: string;
              name?: string;
              organization?: string;
              /** @description Its API tokens, oldest first (expired ones too, until revoked). */
              tokens: {
                /** Format: date-time */
                created_at: string;
                /**
                 * Format: date-time
                 * @description Null: it never expires.
                 */
                expires_at: string | null;
                /** Format: date-time */
                last_used_at: string | null;
              }[];
              /** @example alice@example.org */
              username: string;
            }[];
          };
        };
      };
    };
    put?: never;
    /** Create an identity `user@domain` and its first API token (admin only). */
    post: {
      parameters: {
        query?: never;
        header?: never;
        path?: never;
        cookie?: never;
      };
      requestBody: {
        content: {
          "application/json": {
            email?: string;
            identity_provider?: string;
            name?: string;
            organization?: string;
            /** @description The new token stops working this many seconds from now; without it, it never expires. */
            token_expires_in_seconds?: number;
            /** @example alice@example.org */
            username: string;
          };
        };
      };
      responses: {
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "4XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "5XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Default Response */
        201: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": {
              identity: components["schemas"]["IdentityInfo"];
              /** @description A new API token; it is shown only in this answer. */
              token: string;
              /**
               * Format: date-time
               * @description When the token stops working; null: never.
               */
              token_expires_at: string | null;
            };
          };
        };
      };
    };
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/v1/admin/identities/{username}": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    post?: never;
    /** Remove an identity and its tokens; with force, also its endpoints, functions and tasks (admin only). */
    delete: {
      parameters: {
        query?: {
          force?: boolean;
        };
        header?: never;
        path: {
          /** @example alice@example.org */
          username: string;
        };
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "4XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "5XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": {
              /** @description Endpoints removed with it. */
              endpoints: number;
              identity: components["schemas"]["IdentityInfo"];
              /** @description Tasks removed with it. */
              tasks: number;
            };
          };
        };
      };
    };
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/v1/admin/identities/{username}/tokens": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** A new API token for an identity; older ones keep working unless revoke_others (admin only). */
    post: {
      parameters: {
        query?: {
          /** @description The new token stops working this many seconds from now; without it, it never expires. */
          expires_in_seconds?: number;
          revoke_others?: boolean;
        };
        header?: never;
        path: {
          /** @example alice@example.org */
          username: string;
        };
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "4XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "5XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": {
              identity: components["schemas"]["IdentityInfo"];
              /** @description How many older tokens were revoked. */
              revoked: number;
              /** @description A new API token; it is shown only in this answer. */
              token: string;
              /**
               * Format: date-time
               * @description When the token stops working; null: never.
               */
              token_expires_at: string | null;
            };
          };
        };
      };
    };
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/v1/endpoints": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The endpoints the caller owns. */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path?: never;
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "4XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "5XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["EndpointInfo"][];
          };
        };
      };
    };
    put?: never;
    /** Register a new endpoint, or re-register a known id (same owner). */
    post: {
      parameters: {
        query?: never;
        header?: never;
        path?: never;
        cookie?: never;
      };
      requestBody: {
        content: {
          "application/json": {
            allowed_functions?: string[] | null;
            display_name?: string | null;
            /** Format: uuid */
            endpoint_id?: string;
            metadata?: {
              [key: string]: unknown;
            };
            multi_user?: boolean;
            name: string;
          };
        };
      };
      responses: {
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "4XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "5XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": {
              amqp: {
                managementPort?: number;
                serviceUser: string;
                url: string;
              };
              command_queue: string;
              /** Format: uuid */
              endpoint_id: string;
            };
          };
        };
      };
    };
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/v1/endpoints/{endpoint_id}": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** An endpoint (yours, or a multi-user endpoint). */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path: {
          endpoint_id: string;
        };
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "4XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "5XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["EndpointInfo"];
          };
        };
      };
    };
    put?: never;
    post?: never;
    /** Delete your endpoint (its tasks stay as history); refused with 409 while it has unfinished tasks, unless force fails them. */
    delete: {
      parameters: {
        query?: {
          force?: boolean;
        };
        header?: never;
        path: {
          endpoint_id: string;
        };
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "4XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "5XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": {
              /** @enum {boolean} */
              deleted: true;
              /** Format: uuid */
              id: string;
            };
          };
        };
      };
    };
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/v1/endpoints/{endpoint_id}/status": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Whether an endpoint is online (heartbeats younger than three periods). */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path: {
          endpoint_id: string;
        };
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "4XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "5XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": {
              /** Format: uuid */
              endpoint_id: string;
              /** Format: date-time */
              last_heartbeat: string | null;
              /** @enum {string} */
              status: "online" | "offline";
            };
          };
        };
      };
    };
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/v1/endpoints/{endpoint_id}/submit": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Submit tasks to an endpoint; results are pushed to `result_queue`. */
    post: {
      parameters: {
        query?: never;
        header?: never;
        path: {
          endpoint_id: string;
        };
        cookie?: never;
      };
      requestBody: {
        content: {
          "application/json": {
            resource_specification?: {
              [key: string]: unknown;
            } | null;
            /** Format: uuid */
            task_group_id?: string;
            tasks: {
              args: components["schemas"]["Payload"];
              /** Format: uuid */
              function_id: string;
              /** Format: uuid */
              task_id: string;
            }[];
            user_endpoint_config?: {
              [key: string]: unknown;
            } | null;
            user_runtime?: {
              arch?: string;
              hostname?: string;
              node_version?: string;
              platform?: string;
              sdk_version?: string;
            } | null;
          };
        };
      };
      responses: {
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "4XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "5XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": {
              amqp: {
                serviceUser: string;
                url: string;
              };
              result_queue: string;
              /** Format: uuid */
              task_group_id: string;
              task_ids: string[];
              /** Format: uuid */
              uep_id: string;
            };
          };
        };
      };
    };
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/v1/functions": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Register a function; the same payload registered again keeps its id. */
    post: {
      parameters: {
        query?: never;
        header?: never;
        path?: never;
        cookie?: never;
      };
      requestBody: {
        content: {
          "application/json": {
            function: components["schemas"]["Payload"];
            name?: string;
          };
        };
      };
      responses: {
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "4XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "5XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": {
              /** Format: uuid */
              function_id: string;
            };
          };
        };
      };
    };
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/v1/functions/{function_id}": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** A registered function. */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path: {
          function_id: string;
        };
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "4XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "5XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": {
              function: components["schemas"]["Payload"];
              /** Format: uuid */
              function_id: string;
              name: string | null;
            };
          };
        };
      };
    };
    put?: never;
    post?: never;
    /** Delete your function; later submits naming it get 404 (its tasks stay as history). */
    delete: {
      parameters: {
        query?: never;
        header?: never;
        path: {
          function_id: string;
        };
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "4XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "5XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": {
              /** @enum {boolean} */
              deleted: true;
              /** Format: uuid */
              id: string;
            };
          };
        };
      };
    };
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/v1/task_groups": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Your task groups, oldest first, with their tasks counted per state. */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path?: never;
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "4XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "5XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": {
              /** Format: date-time */
              created_at: string;
              /** @description Tasks of the group per state (only states with at least one task). */
              task_counts: {
                cancelled?: number;
                failed?: number;
                received?: number;
                running?: number;
                success?: number;
                "waiting-for-endpoint"?: number;
              };
              /** Format: uuid */
              task_group_id: string;
            }[];
          };
        };
      };
    };
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/v1/task_groups/{task_group_id}": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** One of your task groups: counts, unfinished tasks, and where its results are pushed. */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path: {
          task_group_id: string;
        };
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "4XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "5XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": {
              amqp: {
                serviceUser: string;
                url: string;
              };
              /** Format: date-time */
              created_at: string;
              pending_tasks: {
                /** Format: uuid */
                endpoint_id: string;
                /** @enum {string} */
                state: "received" | "waiting-for-endpoint" | "running" | "success" | "failed" | "cancelled";
                /** Format: uuid */
                task_id: string;
              }[];
              result_queue: string;
              /** @description Tasks of the group per state (only states with at least one task). */
              task_counts: {
                cancelled?: number;
                failed?: number;
                received?: number;
                running?: number;
                success?: number;
                "waiting-for-endpoint"?: number;
              };
              /** Format: uuid */
              task_group_id: string;
            };
          };
        };
      };
    };
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/v1/tasks/{task_id}": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** A task's state, and its result or error once it finished. */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path: {
          task_id: string;
        };
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "4XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "5XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["TaskStatus"];
          };
        };
      };
    };
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/v1/tasks/{task_id}/cancel": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Cancel your task if it has not started: it never runs and a `cancelled` result is pushed to its task group's queue. */
    post: {
      parameters: {
        query?: never;
        header?: never;
        path: {
          task_id: string;
        };
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "4XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "5XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": {
              /** @description False when the task was running or finished already. */
              cancelled: boolean;
              /** @enum {string} */
              state: "received" | "waiting-for-endpoint" | "running" | "success" | "failed" | "cancelled";
              /** Format: uuid */
              task_id: string;
            };
          };
        };
      };
    };
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/v1/tasks/batch_status": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** The states of many tasks; unknown ids (or other identities' tasks) are left out. */
    post: {
      parameters: {
        query?: never;
        header?: never;
        path?: never;
        cookie?: never;
      };
      requestBody: {
        content: {
          "application/json": {
            task_ids: string[];
          };
        };
      };
      responses: {
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "4XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "5XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": {
              tasks: {
                [key: string]: components["schemas"]["TaskStatus"];
              };
            };
          };
        };
      };
    };
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  "/v1/whoami": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The identity of the token. */
    get: {
      parameters: {
        query?: never;
        header?: never;
        path?: never;
        cookie?: never;
      };
      requestBody?: never;
      responses: {
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "4XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
        "5XX": {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["ApiError"];
          };
        };
        /** @description Default Response */
        200: {
          headers: {
            [name: string]: unknown;
          };
          content: {
            "application/json": components["schemas"]["IdentityInfo"];
          };
        };
      };
    };
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
}
export type webhooks = Record<string, never>;
export interface components {
  schemas: {
    /** @description Every error answer: a stable code and one sentence naming the problem and the fix. */
    ApiError: {
      /** @example FUNCTION_NOT_FOUND */
      code: string;
      /** @example Not Found */
      error: string;
      message: string;
      statusCode: number;
    };
    EndpointInfo: {
      display_name: string | null;
      /** Format: uuid */
      endpoint_id: string;
      /** Format: date-time */
      last_heartbeat: string | null;
      multi_user: boolean;
      name: string;
      /** @description The owner's username. */
      owner: string;
      /** @enum {string} */
      status: "online" | "offline";
    };
    IdentityInfo: {
      email?: string;
      /** Format: uuid */
      id: string;
      identity_provider?: string;
      name?: string;
      organization?: string;
      /** @example alice@example.org */
      username: string;
    };
    /** @description A serialized function, argument list or result; `strategy` names the serializer. */
    Payload: {
      data: string;
      /** @example conduit.JSONData */
      strategy: string;
    };
    TaskStatus: {
      /** Format: date-time */
      completed_at: string | null;
      /** Format: date-time */
      created_at: string;
      /** Format: uuid */
      endpoint_id: string;
      error?: components["schemas"]["WireError"];
      /** Format: uuid */
      function_id: string;
      result?: components["schemas"]["Payload"];
      /** @enum {string} */
      state: "received" | "waiting-for-endpoint" | "running" | "success" | "failed" | "cancelled";
      /** Format: uuid */
      task_group_id: string;
      /** Format: uuid */
      task_id: string;
    };
    /** @description An error as it crosses a process boundary. */
    WireError: {
      cause?: components["schemas"]["WireError"];
      code: string;
      message: string;
      name: string;
      stack?: string;
    };
  };
  responses: never;
  parameters: never;
  requestBodies: never;
  headers: never;
  pathItems: never;
}
export type $defs = Record<string, never>;
export type operations = Record<string, never>;
