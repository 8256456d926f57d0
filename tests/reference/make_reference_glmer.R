# Reference values from R's lme4::glmer for the Python tests of mlmcourse.glmer.
#
# Run from the repository root:
#     Rscript tests/reference/make_reference_glmer.R
# It reads data/contraception.csv, data/cbpp.csv and data/epil.csv and writes
# tests/reference/glmer.json. The tests read the JSON; they never call R.
#
# Data are prepared as mlmcourse.datasets.load() prepares them: id columns are
# character, other quoted columns factors with levels in code-point order.
#
# Every model is fitted three times, recording the largest absolute gradient:
#   * `default_fit`: lme4's default control (what a student gets);
#   * `pirls_default`: bobyqa with maxfun 1e5 but lme4's default inner
#     tolerance tolPwrss = 1e-7. lme4 stops the inner PIRLS iterations on a
#     relative change of the penalized deviance and takes log|L| from the
#     weights of the iteration before the last, so its Laplace deviance is off
#     by up to a few 1e-3 and its finite-difference Hessian (the standard
#     errors) by up to about 1% (cbpp);
#   * the main record: bobyqa, maxfun 1e5 and tolPwrss = 1e-10, the exact
#     Laplace (or quadrature) optimum. (tolPwrss = 1e-13 changes nothing at the
#     printed precision.) The tests compare with this fit.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
  library(performance)
  library(geepack)
})
source(file.path("tests", "reference", "course_data.R"))
out_file <- file.path("tests", "reference", "glmer.json")

contraception <- load_course("contraception")
cbpp <- load_course("cbpp")
cbpp$prop <- cbpp$incidence / cbpp$size
epil <- load_course("epil")
epil$obs <- as.character(seq_len(nrow(epil)))
data_sets <- list(contraception = contraception, cbpp = cbpp, epil = epil)
derived <- list(cbpp = list(prop = "incidence / size"), epil = list(obs = "as.character(seq_len(nrow(epil)))"))

tight <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5), tolPwrss = 1e-10)
bobyqa_only <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))

max_grad <- function(m) {
  g <- m@optinfo$derivs$gradient
  if (is.null(g)) NA_real_ else max(abs(g))
}

messages_of <- function(m) {
  c(m@optinfo$conv$lme4$messages, unlist(m@optinfo$warnings))
}

describe_fit <- function(m) {
  s <- summary(m)
  vc <- as.data.frame(VarCorr(m))
  v <- as.matrix(vcov(m))
  list(
    loglik = as.numeric(logLik(m)),
    aic = AIC(m), bic = BIC(m),
    minus_two_loglik = -2 * as.numeric(logLik(m)),
    deviance_function = deviance(m),
    df = attr(logLik(m), "df"),
    df_resid = df.residual(m),
    nobs = nobs(m),
    ngroups = as.list(ngrps(m)),
    fixef = as.list(fixef(m)),
    std_error = as.list(sqrt(diag(v))),
    z_value = as.list(coef(s)[, "z value"]),
    p_value = as.list(coef(s)[, "Pr(>|z|)"]),
    vcov = list(names = colnames(v), values = as.vector(t(v))),
    varcorr = lapply(seq_len(nrow(vc)), function(i) list(
      grp = vc$grp[i], var1 = if (is.na(vc$var1[i])) NULL else vc$var1[i],
      var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i], vcov = vc$vcov[i], sdcor = vc$sdcor[i])),
    theta = unname(getME(m, "theta")),
    singular = isSingular(m),
    max_abs_gradient = max_grad(m),
    messages = as.list(messages_of(m))
  )
}

ranef_rows <- function(m) {
  r <- as.data.frame(ranef(m, condVar = TRUE))
  lapply(seq_len(nrow(r)), function(i) list(grpvar = as.character(r$grpvar[i]), term = as.character(r$term[i]),
                                             grp = as.character(r$grp[i]), condval = r$condval[i],
                                             condsd = r$condsd[i]))
}

specs <- list(
  contra_int = list(data = "contraception", formula = "use ~ urban + livch + age + (1 | district)",
                    family = "binomial", link = "logit", nagq = c(1, 10), ranef = TRUE, extras = TRUE),
  contra_slope = list(data = "contraception", formula = "use ~ urban + livch + age + (1 + urban | district)",
                      family = "binomial", link = "logit", nagq = 1, ranef = TRUE),
  contra_probit = list(data = "contraception", formula = "use ~ urban + livch + age + (1 | district)",
                       family = "binomial", link = "probit", nagq = c(1, 10)),
  contra_null = list(data = "contraception", formula = "use ~ 1 + (1 | district)",
                     family = "binomial", link = "logit", nagq = c(1, 10), extras = TRUE),
  cbpp_cbind = list(data = "cbpp", formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                    family = "binomial", link = "logit", nagq = c(1, 10), ranef = TRUE),
  cbpp_prop = list(data = "cbpp", formula = "prop ~ period + (1 | herd)", weights = "size",
                   family = "binomial", link = "logit", nagq = c(1, 10)),
  epil_pois = list(data = "epil", formula = "y ~ lbase + lage + trt * V4 + (1 | subject)",
                   family = "poisson", link = "log", nagq = c(1, 10), ranef = TRUE, extras = TRUE),
  epil_olre = list(data = "epil", formula = "y ~ lbase + lage + trt * V4 + (1 | subject) + (1 | obs)",
                   family = "poisson", link = "log", nagq = 1, extras = TRUE),
  epil_slope = list(data = "epil", formula = "y ~ lbase + lage + trt * period + (1 + period | subject)",
                    family = "poisson", link = "log", nagq = 1)
)

fit_one <- function(spec, nagq, control, start = NULL) {
  d <- data_sets[[spec$data]]
  fam <- if (spec$family == "binomial") binomial(link = spec$link) else poisson(link = spec$link)
  args <- list(formula = as.formula(spec$formula), data = d, family = fam, nAGQ = nagq)
  if (!is.null(control)) args$control <- control
  if (!is.null(start)) args$start <- start
  if (!is.null(spec$weights)) args$weights <- d[[spec$weights]]
  elapsed <- system.time(m <- suppressWarnings(suppressMessages(do.call(glmer, args))))[["elapsed"]]
  list(model = m, seconds = elapsed)
}

extras_of <- function(m, spec) {
  out <- list(fitted_response = as.vector(fitted(m))[1:10],
              predict_link_fixed = as.vector(predict(m, re.form = NA))[1:10])
  if (spec$family == "binomial") {
    out$icc_latent <- as.numeric(performance::icc(m)$ICC_adjusted)
  } else {
    od <- performance::check_overdispersion(m)
    out$overdispersion <- list(chisq = od$chisq_statistic, ratio = od$dispersion_ratio,
                               df = od$residual_df, p_value = od$p_value)
  }
  out
}

models <- list()
for (id in names(specs)) {
  spec <- specs[[id]]
  for (nagq in spec$nagq) {
    key <- if (nagq == 1) id else paste0(id, "_agq", nagq)
    default <- fit_one(spec, nagq, NULL)
    loose <- fit_one(spec, nagq, bobyqa_only)
    # started at the bobyqa fit: from lme4's own start, bobyqa with tolPwrss = 1e-10 can stall
    # (contra_slope: max|grad| 1.6, 0.0045 short in the log-likelihood)
    best <- fit_one(spec, nagq, tight, start = list(theta = getME(loose$model, "theta"),
                                                    fixef = fixef(loose$model)))
    record <- list(data = spec$data, formula = spec$formula, family = spec$family, link = spec$link,
                   nagq = nagq, weights = spec$weights)
    record <- c(record, describe_fit(best$model))
    record$seconds <- best$seconds
    record$default_fit <- list(loglik = as.numeric(logLik(default$model)),
                               max_abs_gradient = max_grad(default$model),
                               fixef = as.list(fixef(default$model)),
                               messages = as.list(messages_of(default$model)))
    record$pirls_default <- list(loglik = as.numeric(logLik(loose$model)),
                                 max_abs_gradient = max_grad(loose$model),
                                 std_error = as.list(sqrt(diag(as.matrix(vcov(loose$model))))))
    if (isTRUE(spec$ranef) && nagq == 1) record$ranef <- ranef_rows(best$model)
    if (isTRUE(spec$extras) && nagq == 1) record$extras <- extras_of(best$model, spec)
    models[[key]] <- record
    cat(sprintf("%-22s loglik %.4f  max|grad| %.2g (default fit %.2g)\n", key, record$loglik,
                record$max_abs_gradient, record$default_fit$max_abs_gradient))
  }
}

# Population-averaged (marginal) model for the contraception data: GEE with an
# exchangeable working correlation, as statsmodels' GEE fits it.
gee_data <- contraception[order(contraception$district), ]
gee_data$use01 <- as.numeric(gee_data$use == "Y")
gee <- geeglm(use01 ~ urban + livch + age, id = factor(district), data = gee_data,
              family = binomial, corstr = "exchangeable")
gee_record <- list(data = "contraception", formula = "use ~ urban + livch + age", corstr = "exchangeable",
                   coef = as.list(coef(gee)), std_error_robust = as.list(summary(gee)$coefficients[, "Std.err"]),
                   alpha = as.numeric(summary(gee)$corr$Estimate))

versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                 Matrix = as.character(packageVersion("Matrix")),
                 performance = as.character(packageVersion("performance")),
                 geepack = as.character(packageVersion("geepack")),
                 jsonlite = as.character(packageVersion("jsonlite")))
files <- c("contraception.csv", "cbpp.csv", "epil.csv")
sha <- vapply(files, function(f) {
  strsplit(system2("sha256sum", file.path("data", f), stdout = TRUE), " ")[[1]][1]
}, character(1))
out <- list(meta = c(versions, list(sha256 = as.list(sha), tight_control = "glmerControl(optimizer = 'bobyqa', optCtrl = list(maxfun = 1e5), tolPwrss = 1e-10)")),
            derived = derived, models = models, gee = gee_record)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null", na = "null"), out_file)
cat("wrote", out_file, "\n")
